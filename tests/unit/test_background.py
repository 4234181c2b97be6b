"""The broker's background reader: answers come back to the loop through a pipe."""
import select

import peewee as pw

from tubeway.broker.background import BackgroundReads


def ready(reads, timeout=5.0):
    return bool(select.select([reads.read_fd], [], [], timeout)[0])


def test_a_query_runs_on_the_reading_thread_and_its_answer_wakes_the_loop(tmp_path):
    db = pw.SqliteDatabase(str(tmp_path / "reads.db"))
    reads = BackgroundReads(db)
    try:
        answers = []
        reads.submit(lambda: db.execute_sql("SELECT 40 + 2").fetchone()[0], lambda *answer: answers.append(answer))
        assert ready(reads) and answers == []  # nothing runs until the loop takes the answer
        reads.run_finished()
        assert answers == [(42, None)]
    finally:
        reads.close()


def test_a_failing_query_answers_its_error():
    reads = BackgroundReads(pw.SqliteDatabase(":memory:"))
    try:
        reads.submit(lambda: 1 / 0, lambda *answer: None)
        [(_, result, error)] = reads.take()
        assert result is None and isinstance(error, ZeroDivisionError)
    finally:
        reads.close()


def test_an_in_memory_database_is_read_at_once_on_the_loop():
    db = pw.SqliteDatabase(":memory:")
    reads = BackgroundReads(db)
    try:
        assert reads.inline
        reads.submit(lambda: "now", lambda *answer: None)
        assert ready(reads, timeout=0) and [answer[1:] for answer in reads.take()] == [("now", None)]
    finally:
        reads.close()

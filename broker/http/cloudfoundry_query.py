"""A Cloud Foundry list request as the broker's LIST query, and the ``pagination`` block of its answer.

Parameters, checks and messages are Cloud Controller's ``TasksListMessage``: ``page``,
``per_page`` (1..5000, default 50), ``order_by`` (``created_at``/``updated_at``, ``+``
or ``-`` before it), ``guids``, ``names``, ``states``, ``label_selector``,
``created_ats``/``updated_ats`` (exact times, or ``[lt]``, ``[lte]``, ``[gt]``, ``[gte]``),
``sequence_ids`` (an app's list only), ``app_guids``, ``space_guids``,
``organization_guids`` (the global list only). Every filter becomes a storage query.
"""
import re
from urllib.parse import urlencode

from tubeway.broker.http.cloudfoundry_shape import STATES_OF, cf_error, key_error, parse_timestamp, value_error
from tubeway.core.selectors import SelectorError, parse_selector

#: Every parameter a task list takes, in Cloud Controller's order (its error message lists them so).
ALLOWED = ("page", "per_page", "order_by", "created_ats", "updated_ats", "guids", "names", "states", "app_guids",
           "organization_guids", "space_guids", "app_guid", "sequence_ids", "label_selector")
GLOBAL_ONLY = ("app_guids", "organization_guids", "space_guids")
TIME_OPERATORS = ("lt", "lte", "gt", "gte")
#: The storage bound each operator becomes (see ``_bound``).
BOUNDS = {"lt": "lt", "lte": "lt", "gt": "gte", "gte": "gte"}
MAX_PER_PAGE = 5000
DEFAULT_PER_PAGE = 50
MAX_REQUIREMENTS = 50
QUOTED_COMMA = "', '"
#: Cloud Controller's bound on page * per_page (its default renderer.max_total_results).
MAX_RESULT = 2**63 - 1
_LEADING_INT = re.compile(r"\s*([+-]?\d+)")


def ruby_int(text):
    """``String#to_i``: the leading integer of ``text``, 0 when there is none (as Cloud Controller reads pages)."""
    match = _LEADING_INT.match(text)
    return int(match.group(1)) if match else 0


def _humanize(name):
    return name.replace("_", " ").capitalize()


class ListRequest:
    """One list request's arguments, checked: the broker ``query`` and what its links repeat."""

    def __init__(self, arguments, app_guid, apps):
        self.arguments = arguments  # name -> [values] as Tornado parsed them (time operators as "x[lt]")
        self.app_guid = app_guid
        self.apps = apps
        self.errors = []
        self.page, self.per_page = 1, DEFAULT_PER_PAGE
        self.query = {"namespace": "cloudfoundry"}
        self.link_params = {}

    def parse(self):
        """Fill ``query`` and ``link_params``; raise 400 CF-BadQueryParameter naming every problem."""
        names = [self._base(name) for name in self.arguments]
        unknown = [name for name in dict.fromkeys(names) if name not in ALLOWED]
        if unknown:
            self.errors.append(f"Unknown query parameter(s): '{QUOTED_COMMA.join(unknown)}'. "
                               f"Valid parameters are: '{QUOTED_COMMA.join(ALLOWED)}'")
        misplaced = [n for n in dict.fromkeys(names) if n in (GLOBAL_ONLY if self.app_guid else ("sequence_ids",))]
        if misplaced:
            self.errors.append(f"Unknown query parameter(s): '{QUOTED_COMMA.join(misplaced)}'")
        self._paging()
        self._filters()
        if self.errors:
            raise cf_error("BadQueryParameter", *self.errors)
        return self

    @staticmethod
    def _base(name):
        return name.split("[", 1)[0] if name.endswith("]") else name

    def _one(self, name):
        values = self.arguments.get(name)
        return values[-1] if values else None

    def _paging(self):
        page, per_page, order_by = self._one("page"), self._one("per_page"), self._one("order_by")
        if page is not None:
            self.page = ruby_int(page)
            if self.page <= 0:
                self.errors.append("Page must be a positive integer")
        if per_page is not None:
            self.per_page = ruby_int(per_page)
            if self.per_page <= 0:
                self.errors.append("Per page must be a positive integer")
            elif self.per_page > MAX_PER_PAGE:
                self.errors.append(f"Per page must be between 1 and {MAX_PER_PAGE}")
        if self.page * self.per_page > MAX_RESULT:
            self.errors.append(f"Maximum result (page * per_page) must be less than {MAX_RESULT}")
        self.query["order"] = "created"
        if order_by:
            match = re.fullmatch(r"([+-]?)(created_at|updated_at)", order_by)
            if not match:
                self.errors.append("Order by can only be: 'created_at', 'updated_at'")
            else:
                self.query["order"] = ("-" if match.group(1) == "-" else "") + match.group(2)[:-3]
                self.link_params["order_by"] = ("-" if match.group(1) == "-" else "+") + match.group(2)

    def _list(self, name):
        """A comma-list parameter's values (None when absent), kept for the links."""
        text = self._one(name)
        if text is None:
            return None
        self.link_params[name] = text
        return text.split(",")

    def _filters(self):
        for name, field in (("guids", "ids"), ("names", "names")):
            values = self._list(name)
            if values is not None:
                self.query[field] = values
        states = self._list("states")
        if states is not None:
            self.query["states"] = sorted({native for state in states for native in STATES_OF.get(state, ())})
        sequences = self._list("sequence_ids") if self.app_guid else None
        if sequences is not None:
            self.query["sequences"] = [int(v) for v in sequences if v.isdigit() and int(v) < 2**63]
        self._apps()
        self._selector()
        for name in ("created_ats", "updated_ats"):
            ranges = self._time_ranges(name)
            if ranges is not None:
                self.query[name[:-1]] = ranges

    def _apps(self):
        if self.app_guid:
            self.query["queue"] = self.app_guid
            return
        queues = self._list("app_guids")
        for name, key in (("space_guids", "space_guid"), ("organization_guids", "organization_guid")):
            wanted = self._list(name)
            if wanted is not None:
                matching = [guid for guid, app in self.apps.items() if app.get(key) in wanted]
                queues = matching if queues is None else [guid for guid in queues if guid in matching]
        if queues is not None:
            self.query["queues"] = queues

    def _selector(self):
        text = self._one("label_selector")
        if text is None:
            return
        self.link_params["label_selector"] = text
        try:
            requirements = parse_selector(text)
        except SelectorError as exc:
            self.errors.append(str(exc).split(":")[0] if "Missing" in str(exc) else "Invalid label_selector value")
            return
        if len(requirements) > MAX_REQUIREMENTS:
            self.errors.append(f"Too many label_selector requirements (maximum is {MAX_REQUIREMENTS})")
            return
        for requirement in requirements:
            problem = key_error(requirement["key"]) or next(
                (value_error(v) for v in requirement["values"] if value_error(v)), None)
            if problem:
                self.errors.append(problem)
                return
        self.query["selector"] = requirements

    def _time_ranges(self, name):
        exact = self._one(name)
        ranges = []
        if exact is not None:
            self.link_params[name] = exact
            for text in exact.split(","):
                moment = self._moment(name, text)
                if moment is not None:
                    ranges.append({"gte": moment, "lt": moment + 1})
        bounds = {}
        for key in self.arguments:
            if key.startswith(name + "[") and key.endswith("]"):
                bounds.update(self._bound(name, key[len(name) + 1:-1], self._one(key)))
        if bounds:
            ranges.append(bounds)
        return ranges or None

    def _bound(self, name, operator, text):
        if operator not in TIME_OPERATORS:
            self.errors.append(f"{_humanize(name)} Invalid relational operator: '{operator}'")
            return {}
        self.link_params[f"{name}[{operator}]"] = text
        if "," in text:
            self.errors.append(f"{_humanize(name)} only accepts one value when using a relational operator")
            return {}
        moment = self._moment(name, text)
        if moment is None:
            return {}
        # Times are whole seconds: "lte T" is anything before T + 1 s, "gt T" anything from T + 1 s.
        return {BOUNDS[operator]: moment + (1 if operator in ("lte", "gt") else 0)}

    def _moment(self, name, text):
        moment = parse_timestamp(text)
        if moment is None:
            self.errors.append(f"{_humanize(name)} has an invalid timestamp format. Timestamps should be "
                               "formatted as 'YYYY-MM-DDThh:mm:ssZ'")
        return moment

    def broker_query(self):
        """The LIST body for this page."""
        return dict(self.query, limit=self.per_page, offset=(self.page - 1) * self.per_page, total=True)

    def pagination(self, url, total):
        """Cloud Foundry's ``pagination``: totals and links (parameters sorted, as Rails' ``to_query`` writes)."""
        last = max(1, -(-total // self.per_page))

        def link(page):
            params = dict(self.link_params, page=str(page), per_page=str(self.per_page))
            return {"href": f"{url}?{urlencode(sorted(params.items()))}"}
        return {
            "total_results": total, "total_pages": last, "first": link(1), "last": link(last),
            "next": link(self.page + 1) if self.page + 1 <= last else None,
            "previous": link(self.page - 1) if self.page > 1 else None,
        }

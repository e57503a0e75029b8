"""Reading a campaign file: YAML -> a validated `Campaign`, every problem located by key and line.

`load_campaign` reads the YAML, notes the line of every key and every key written twice, lets
the model in `campaign.py` validate it, and turns pydantic's errors into `Problem`s with file,
line and key. Then it checks the files the campaign names. When only optional keys are wrong,
the error carries a partial campaign (without them), so `check` can still look at the
recipients and templates and report their problems in the same run.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from mailcast.campaign import Campaign, KeyLines, SmtpTransport, is_template
from mailcast.errors import ExitCode, MailcastError, Problem, ProblemsError

# the keys without which no partial campaign can be made
REQUIRED_KEYS = frozenset({"from", "subject", "template", "recipients", "(top level)"})
# the parts pydantic puts into an error's location that name a type rather than a key
_TYPE_NAMES = ("str", "list", "int", "float", "function-after", "constrained-int", "constrained-float")
# what fits a key that takes a section or a mapping, for a value of another type (`schedule: tomorrow`)
SECTION_EXAMPLES = {
    "template": "template: {html: body.html}",
    "schedule": 'schedule: {start: "2026-12-01 09:00"}',
    "unsubscribe": "unsubscribe: {url: https://example.com/unsubscribe}",
    "dkim": "dkim: {domain: example.com, selector: s2026, private_key_file: dkim.key}",
    "limits": "limits: {daily: 2000}",
    "transport": "transport: {type: smtp, host: smtp.example.com}",
    "csv": 'csv: {delimiter: ";"}',
    "headers": "headers: {X-Campaign: spring}",
    "tags": "tags: {campaign: spring}",
}


def load_campaign(path: Path) -> Campaign:
    """Read and validate a campaign file; raise ProblemsError (exit 78) listing every problem."""
    shown = str(path)
    data, lines, repeats = _read(path, shown)
    problems = [_repeat_problem(key, line, first, shown) for key, line, first in repeats]
    data, password = _without_password(data, lines, shown)
    problems.extend(password)
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        errors = _problems_from(exc, shown, lines)
        problems.extend(errors)
        raise _config_error(problems, _partial(data, errors, path, lines), shown, lines) from None
    campaign = campaign.placed(path, lines)
    if problems:
        raise _config_error(problems, campaign, shown, lines)
    problems.extend(_file_problems(campaign, shown, lines))
    if problems:
        raise _config_error(problems)
    return campaign


def _read(path: Path, shown: str) -> tuple[dict[Any, Any], KeyLines, list[tuple[str, int, int]]]:
    """The file's mapping, the line of each key and the keys written twice (see `_key_lines`)."""
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        meant = f"give the campaign file inside it, such as {path / inside[0]}" if inside else "give a campaign file"
        raise _config_error([Problem(f"{shown} is a folder: {meant}")])
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _config_error([Problem(f"campaign file {shown} does not exist", file=shown)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _config_error([Problem(f"cannot read the campaign file: {exc}", file=shown)]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise _config_error([Problem(f"YAML error: {problem}", file=shown, line=line)]) from None
    lines, repeats = _key_lines(node)
    if not isinstance(data, dict):
        raise _config_error(
            [Problem("the campaign file must be a mapping of keys (name, from, subject, …)", file=shown, line=1)]
        )
    return data, lines, repeats


def _without_password(data: dict[Any, Any], lines: KeyLines, shown: str) -> tuple[dict[Any, Any], list[Problem]]:
    """A password written in the file is a problem, and is taken out so no message ever shows it."""
    transport = data.get("transport")
    if not (isinstance(transport, dict) and "password" in transport):
        return data, []
    problem = Problem(
        "transport.password: a password must never be written in the campaign file; "
        "put it in an environment variable and name that variable with password_env",
        file=shown,
        line=lines.get(("transport", "password")),
        key="transport.password",
    )
    transport = {k: v for k, v in transport.items() if k != "password"}
    return {**data, "transport": transport}, [problem]


def _partial(data: dict[Any, Any], errors: list[Problem], path: Path, lines: KeyLines) -> Campaign | None:
    """The campaign validated again without its faulty keys, when none of them is required."""
    faulty = {str(p.key).split(".")[0] for p in errors}
    if faulty & REQUIRED_KEYS:
        return None
    try:
        return Campaign.model_validate({k: v for k, v in data.items() if k not in faulty}).placed(path, lines)
    except ValidationError:
        return None


def _file_problems(campaign: Campaign, shown: str, lines: KeyLines) -> list[Problem]:
    """Files the campaign names must exist and stay inside its folder (attachments)."""
    problems: list[Problem] = []
    named: list[tuple[tuple[Any, ...], str]] = [(("recipients",), campaign.recipients)]
    for part in ("html", "text", "markdown"):
        value = getattr(campaign.template, part)
        if value:
            named.append((("template", part), value))
    for index, item in enumerate(campaign.attachments):
        if not is_template(item):  # a path with {{ … }} names a file per row: check renders and checks each
            named.append((("attachments", index), item))
    if campaign.dkim:
        named.append((("dkim", "private_key_file"), campaign.dkim.private_key_file))
    if isinstance(campaign.transport, SmtpTransport) and campaign.transport.ca_file:
        named.append((("transport", "ca_file"), campaign.transport.ca_file))
    folder = campaign.folder.resolve()
    for key, relative in named:
        target = campaign.resolve(relative)
        dotted = ".".join(str(k) for k in key)
        line = lines.get(key)
        if key[0] == "attachments" and not target.is_relative_to(folder):
            problems.append(
                Problem(
                    f"{dotted}: {relative} is outside the campaign's folder; move it inside",
                    file=shown,
                    line=line,
                    key=dotted,
                )
            )
        elif target.is_dir():
            problems.append(
                Problem(f"{dotted}: {relative} is a folder; name a file in it", file=shown, line=line, key=dotted)
            )
        elif not target.is_file():
            problems.append(
                Problem(f"{dotted}: file {relative} not found (looked for {target})", file=shown, line=line, key=dotted)
            )
        elif key == ("dkim", "private_key_file"):
            problems.extend(_dkim_key_problems(campaign, target, shown, line))
    return problems


def _dkim_key_problems(campaign: Campaign, key_file: Path, shown: str, line: int | None) -> list[Problem]:
    """The DKIM key must sign: tried once here, so check finds a bad key before send does."""
    from mailcast.message import DkimSigner

    assert campaign.dkim is not None
    try:
        DkimSigner(
            domain=campaign.dkim.domain,
            selector=campaign.dkim.selector,
            private_key=key_file.read_bytes(),
            key_file=campaign.dkim.private_key_file,
        )
    except MailcastError as exc:
        return [Problem(exc.message, file=shown, line=line, key="dkim.private_key_file")]
    except OSError as exc:
        return [Problem(f"dkim.private_key_file: cannot read it: {exc.strerror}", file=shown, line=line)]
    return []


def _config_error(
    problems: list[Problem],
    partial: Campaign | None = None,
    shown: str = "",
    lines: KeyLines | None = None,
) -> ProblemsError:
    """Exit 78 with every problem; `partial` is the campaign without its faulty keys, when its files exist."""
    if partial is not None:
        missing = _file_problems(partial, shown, lines or {})
        problems = problems + missing
        partial = None if missing else partial
    return ProblemsError(problems=problems, kind=ExitCode.CONFIG, partial=partial)


def _key_lines(node: yaml.Node | None) -> tuple[KeyLines, list[tuple[str, int, int]]]:
    """Map each key path, such as ("transport", "port"), to the 1-based line where it stands; and
    list each key written twice in one mapping as (dotted key, its line, the line of the first)."""
    lines: KeyLines = {}
    repeats: list[tuple[str, int, int]] = []
    looked_at: set[int] = set()  # an aliased mapping is walked again but its repeats are reported once

    def walk(current: yaml.Node, prefix: tuple[Any, ...]) -> None:
        if isinstance(current, yaml.MappingNode):
            if id(current) not in looked_at:
                looked_at.add(id(current))
                repeats.extend(_repeated_keys(current, prefix))
            for key_node, value_node in current.value:
                path = (*prefix, key_node.value)
                lines[path] = key_node.start_mark.line + 1
                walk(value_node, path)
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                path = (*prefix, index)
                lines[path] = item.start_mark.line + 1
                walk(item, path)

    if node is not None:
        walk(node, ())
    return lines, repeats


def _repeated_keys(mapping: yaml.MappingNode, prefix: tuple[Any, ...]) -> list[tuple[str, int, int]]:
    """Keys written twice in one mapping, as (dotted key, its line, the line of the first)."""
    first_lines: dict[tuple[str, str], int] = {}
    repeats = []
    for key_node, _ in mapping.value:
        if not isinstance(key_node, yaml.ScalarNode):
            continue  # a complex key (a list or mapping as key) is refused later as an unknown key
        line = key_node.start_mark.line + 1
        key = (key_node.tag, key_node.value)  # `1` and `"1"` are different keys
        if key in first_lines:
            repeats.append((".".join(str(p) for p in (*prefix, key_node.value)), line, first_lines[key]))
        else:
            first_lines[key] = line
    return repeats


def _repeat_problem(key: str, line: int, first: int, shown: str) -> Problem:
    where = f"on line {first} and again on line {line}" if first != line else f"on line {line}"
    return Problem(
        f"{key} is written twice {where}; YAML would quietly keep only the last one, so delete the one you do not mean",
        file=shown,
        line=line,
        key=key,
    )


def _problems_from(exc: ValidationError, shown: str, lines: KeyLines) -> list[Problem]:
    problems = []
    for error in exc.errors():
        # pydantic puts the union alternative's tag and the failing type's name into locations: drop those parts
        loc = tuple(
            part
            for part in error["loc"]
            if part not in ("smtp", "maildir") and not (isinstance(part, str) and ("[" in part or part in _TYPE_NAMES))
        )
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        line = None
        for cut in range(len(loc), 0, -1):
            line = lines.get(loc[:cut])
            if line:
                break
        problems.append(Problem(_explain(error, dotted), file=shown, line=line, key=dotted))
    # A union reports one error per alternative; keep one message per key.
    seen: dict[str, Problem] = {}
    for p in problems:
        seen.setdefault(f"{p.key}|{p.message}", p)
    return list(seen.values())


UNION_KEYS = {  # keys that take more than one shape: one message for all of them
    "limits.warmup": "write standard, off, or a plan of daily limits such as [500, 1000, 2000]",
    "reply_to": 'write one mailbox ("Name <address>") or a list of them',
    "cc": "write an address (or a template of one) or a list of them",
    "bcc": "write an address (or a template of one) or a list of them",
}


def _explain(error: Any, dotted: str) -> str:
    kind = error["type"]
    got = error.get("input")
    if kind == "extra_forbidden":
        return _unknown_key(error, dotted)
    if kind == "missing":
        return f"{dotted} is required"
    if dotted in UNION_KEYS and (kind.endswith("_type") or kind == "literal_error"):
        return f"{dotted}: {UNION_KEYS[dotted]} (got {got!r}){_yaml_hint(kind, got)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return _transport_type(dotted, got)
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return _not_a_section(error, dotted)
    if kind.endswith("_type") or kind == "literal_error":
        return f"{dotted}: {message} (got {got!r}){_yaml_hint(kind, got)}"
    return f"{dotted}: {message}"


def _unknown_key(error: Any, dotted: str) -> str:
    if dotted == "password":
        return (
            "password: a password must never be written in the campaign file; put it in an environment "
            "variable and name that variable with transport.password_env"
        )
    meant = _meant_key(error["loc"], dotted)
    if meant:
        return f"unknown key {dotted}: did you mean {meant}?"
    return f"unknown key {dotted}: remove it or check its spelling (see the README's campaign file reference)"


def _transport_type(dotted: str, got: Any) -> str:
    """transport without a type, or with one that is neither smtp nor maildir."""
    given = got.get("type") if isinstance(got, dict) else None
    if given is None:
        keys = [str(k) for k in got] if isinstance(got, dict) else []
        typo = next((k for k in keys if _near("type", k)), None)
        also = f"; did you mean type instead of {typo}?" if typo else ""
        return f"{dotted}.type is required: smtp or maildir{also}"
    meant = next((t for t in ("smtp", "maildir") if _near(t, str(given))), None)
    also = f"; did you mean {meant}?" if meant else ""
    return f"{dotted}.type: {given!r} is neither smtp nor maildir{also}"


def _yaml_hint(kind: str, got: Any) -> str:
    """What YAML did to a value that was meant otherwise."""
    if isinstance(got, bool):
        return "; YAML reads yes, no, on and off as true and false: write one of the values it takes"
    if kind == "int_type" and isinstance(got, str) and got.strip().lstrip("-").isdigit():
        return "; write the number without quotes"
    if kind == "string_type" and isinstance(got, int | float):
        return "; put the value in quotes"
    return ""


def _near(known: str, typed: str) -> bool:
    """A near miss: the same letters in another order (ulr, smpt), or close enough by difflib."""
    typed = typed.strip().casefold()
    return sorted(typed) == sorted(known) or difflib.SequenceMatcher(None, typed, known).ratio() >= 0.75


def _not_a_section(error: Any, dotted: str) -> str:
    """A value where a section (`schedule:`) or a mapping (`tags:`) belongs, with an example that fits the key."""
    what = "a mapping of names to values" if error["type"] == "dict_type" else "a section of keys"
    example = SECTION_EXAMPLES.get(dotted)
    if example is None:
        model = _section_model(error["loc"])
        inside = ", ".join(f"{key}: …" for key in _key_names(model).values()) if model else "name: value"
        example = f"{dotted.rpartition('.')[2]}: {{{inside}}}"
    return f"{dotted} must be {what}, such as {example} (got {error.get('input')!r})"


def _meant_key(loc: tuple[Any, ...], dotted: str) -> str | None:
    """The known key an unknown one is a near miss of, dotted like it (`subjet` -> "subject")."""
    model = _section_model(loc[:-1])
    if model is None:
        return None
    known = _key_names(model)
    wanted = str(loc[-1]).strip().casefold()
    close = wanted if wanted in known else next((k for k in known if sorted(k) == sorted(wanted)), None)
    close = close or next(iter(difflib.get_close_matches(wanted, known, n=1, cutoff=0.75)), None)
    if close is None:
        return None
    parent = dotted.rpartition(".")[0]
    return f"{parent}.{known[close]}" if parent else known[close]


def _section_model(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model of the section at an error's location (`("transport", "smtp")` -> SmtpTransport)."""
    model: type[BaseModel] = Campaign
    parts = [part for part in loc if not isinstance(part, int)]  # list indexes lead to the list's items
    while parts:
        part = parts.pop(0)
        field = next((f for name, f in model.model_fields.items() if part in (name, f.alias)), None)
        if field is None:
            return None
        models = _models_in(field.annotation)
        if len(models) > 1 and parts:  # a tagged union such as transport: the next part is the tag
            tag = parts.pop(0)
            models = [
                m for m in models if "type" in m.model_fields and tag in get_args(m.model_fields["type"].annotation)
            ]
        if len(models) != 1:
            return None
        model = models[0]
    return model


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The sections an annotation such as `Schedule | None` or `Annotated[A | B, …]` takes."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def _key_names(model: type[BaseModel]) -> dict[str, str]:
    """The keys of a section as written in the file, by their folded spelling; a field known by an
    alias in the file is also found by its Python name (`sender` -> "from")."""
    names: dict[str, str] = {}
    for name, info in model.model_fields.items():
        written = info.alias or name
        names[written.casefold()] = written
        names.setdefault(name.casefold(), written)
    return names


def campaign_named(value: str) -> tuple[str, Campaign | None]:
    """A campaign given as a file (loaded) or as the name it has in the state file.

    A file with problems still names its campaign (its `name` key, else its stem), so that
    status, report, pause and cancel work while someone is fixing it.
    """
    path = Path(value)
    if path.is_dir():  # a campaign's folder (as `mailcast init` makes it) stands for its one campaign file
        inside = [p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()]
        if len(inside) != 1:
            return value, None
        path = inside[0]
    if path.suffix in (".yaml", ".yml") or path.is_file():
        try:
            campaign = load_campaign(path)
        except ProblemsError as exc:
            if not path.is_file():
                raise
            if exc.partial is not None:
                return exc.partial.name, None
            return _name_in(path), None
        return campaign.name, campaign
    return value, None


def _name_in(path: Path) -> str:
    """The campaign's name as its file gives it, read as leniently as possible."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        data = None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else path.stem

"""The ``mlscale`` command line: the installed console script, every command's interface, and every
``mlscale ...`` command line the project tells people to run (README, library and DAG messages, scripts,
docker-compose) checked against the real CLI — parsed, and run for real on a temporary lake where that is safe."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml
from mlscale.airflow.cli import APPROVAL_GAPS, ISO_DATE, LINEAGE_DIRECTIONS, main, mlscale

ROOT = Path(__file__).resolve().parents[2]
MLSCALE = str(Path(sys.executable).with_name("mlscale"))  # the console script (pyproject [project.scripts])

OPTIONS = {  # the documented interface of every command: option names (and positional arguments)
    "generate": {"--lake", "--start", "--days", "--rows-per-day", "--seed", "--drift-from", "--scenario"},
    "apply-settings": {"PATH"},
    "summary": {"--lake"},
    "lifecycle-summary": {"--lake"},
    "wait-runs": {"--dags", "--from-day", "--to-day", "--timeout"},
    "wait-idle": {"--dags", "--since", "--settle", "--timeout"},
    "simulate": {"--lake", "--days", "--scenario", "--start", "--rows-per-day", "--seed", "--model",
                 "--min-train-days", "--max-rounds"},
    "timeline": {"--lake", "--first", "--last"},
    "tco": {"--lake", "--days", "--gpu-hours-month", "--cpu-hours-month", "--json"},
    "bottlenecks": {"--lake", "--days", "--day", "--json"},
    "idle-clusters": {"--conn", "--idle-minutes", "--shutdown", "--json"},
    "sizing": {"--lake", "--days", "--day", "--json"},
    "retrain-cadence": {"--model", "--lake", "--days", "--day", "--json"},
    "serve": {"--lake", "--model", "--host", "--port", "--workers", "--policy", "--autoscale", "--min-workers",
              "--max-workers", "--target-in-flight"},
    "lineage": {"URI", "--direction", "--json", "--lake"},
    "access-report": {"--from", "--to", "--json", "--records", "--lake"},
    "approve": {"--model", "--version", "--by", "--note", "--accept", "--lake"},
    "rollback": {"--model", "--version", "--by", "--reason", "--lake", "--tracking-uri"},
    "delete-version": {"--model", "--version", "--by", "--reason", "--lake", "--tracking-uri"},
}
COMMANDS = tuple(OPTIONS)
# commands run for real on a temporary lake (apply-settings writes the Airflow DB, wait-runs waits on it)
SAFE = ("generate", "summary", "lifecycle-summary", "access-report", "lineage", "approve", "rollback", "timeline")
LANDING = "landing/customers/dt=2026-11-01/customers.csv"  # written by `generate --start 2026-11-01`
COMMAND_LINE = re.compile(r"(?<![\w.-])mlscale ([a-z][a-z-]*)([^`)\n]*)")


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MLSCALE, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a real run: its own AIRFLOW_HOME, no project Variables."""
    home = tmp_path_factory.mktemp("airflow_home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLSCALE"))}
    return env | {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                  "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db"}


# -------------------------------------------------------------------------------------------------
# the interface
# -------------------------------------------------------------------------------------------------

def test_help_of_the_console_script_lists_every_command() -> None:
    out = run("--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Usage: mlscale [OPTIONS] COMMAND [ARGS]...")
    listed = re.findall(r"^  ([a-z-]+)  ", out.stdout.split("Commands:", 1)[1], re.MULTILINE)
    assert sorted(listed) == sorted(COMMANDS)
    assert sorted(mlscale.commands) == sorted(COMMANDS)
    module = subprocess.run([sys.executable, "-m", "mlscale.airflow.cli", "--help"], capture_output=True,
                            text=True, timeout=120, cwd=ROOT)
    assert (module.returncode, module.stdout) == (0, out.stdout)  # python -m runs the same command


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_documents_its_options(name: str) -> None:
    out = run(name, "--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"Usage: mlscale {name} ")
    command = mlscale.commands[name]
    assert command.help and command.short_help
    names = {opt for p in command.params for opt in p.opts if opt.startswith("--") and opt != "--help"}
    names |= {p.human_readable_name for p in command.params if isinstance(p, click.Argument)}
    assert names == OPTIONS[name]
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts[0]} has no help text"
            assert param.opts[0] in out.stdout


def test_help_imports_no_heavy_library() -> None:
    probe = ("import sys\nfrom mlscale.airflow.cli import main\n"
             "codes = [main([*args, '--help']) for args in ([], *([c] for c in sys.argv[1:]))]\n"
             "heavy = sorted(m for m in ('airflow', 'pandas', 'pyarrow', 'mlflow', 'mlscale.lake') if m in sys.modules)\n"
             "print(codes, heavy, file=sys.stderr)\n")
    out = subprocess.run([sys.executable, "-c", probe, *COMMANDS], capture_output=True, text=True, timeout=120)
    assert out.stderr.strip() == f"{[0] * (len(COMMANDS) + 1)} []", out.stderr


def test_constants_spelled_out_for_a_fast_help_agree_with_the_library() -> None:
    from mlscale.governance.gate import ACCEPT_INSUFFICIENT_BIAS
    from mlscale.lineage import DIRECTIONS

    assert tuple(LINEAGE_DIRECTIONS) == tuple(DIRECTIONS)
    assert APPROVAL_GAPS == (ACCEPT_INSUFFICIENT_BIAS,)


@pytest.mark.parametrize("argv", [
    ["no-such-command"],
    ["generate"],                                                        # --start is required
    ["generate", "--start", "2026-13-01"],
    ["generate", "--start", "2026-11-01", "--days", "three"],
    ["lineage"],                                                         # URI is required
    ["lineage", "raw/x", "--direction", "sideways"],
    ["approve", "--version", "1"],                                       # --by is required
    ["approve", "--version", "1", "--by", "me", "--accept", "everything"],
    ["rollback", "--version", "1", "--by", "me"],                        # --reason is required
    ["wait-runs", "--dags", "a", "--from-day", "2026-11-01", "--to-day", "soon"],
    ["access-report", "--from", "yesterday"],
    ["apply-settings", "no/such/settings.yaml"],
])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "Error:" in capsys.readouterr().err


def test_wait_runs_exits_1_when_runs_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlscale.airflow.cli import runs

    calls = []
    monkeypatch.setattr(runs, "wait_for_runs", lambda *a, **kw: calls.append((a, kw)) or False)
    argv = ["wait-runs", "--dags", "a,b", "--from-day", "2026-11-01", "--to-day", "2026-11-02", "--timeout", "5"]
    assert main(argv) == 1
    monkeypatch.setattr(runs, "wait_for_runs", lambda *a, **kw: calls.append((a, kw)) or True)
    assert main(argv) == 0
    assert calls[0] == ((["a", "b"], "2026-11-01", "2026-11-02"), {"timeout_s": 5.0})


def test_wait_idle_exits_1_when_a_run_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlscale.airflow.cli import runs

    calls = []
    monkeypatch.setattr(runs, "wait_until_idle", lambda *a, **kw: calls.append((a, kw)) or False)
    argv = ["wait-idle", "--dags", "train_model,audit_bias", "--since", "1700000000", "--settle", "3"]
    assert main(argv) == 1
    monkeypatch.setattr(runs, "wait_until_idle", lambda *a, **kw: calls.append((a, kw)) or True)
    assert main(argv) == 0
    assert calls[0] == ((["train_model", "audit_bias"],), {"since": 1.7e9, "settle_s": 3.0, "timeout_s": 1800.0})


def test_command_failures_exit_1_and_lookup_errors_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = str(tmp_path / "lake")
    assert main(["approve", "--version", "1", "--by", "  ", "--lake", lake]) == 1
    assert "Error: an approval needs the approver's name" in capsys.readouterr().err
    assert main(["rollback", "--version", "9", "--by", "me", "--reason", "test", "--lake", lake]) == 1
    assert "Error: version 9 of fraud_detector has no stored model files" in capsys.readouterr().err
    assert main(["lineage", "raw/nothing/dt=2026-01-01", "--lake", lake]) == 2
    assert main(["access-report", "--from", "2026-11-05", "--to", "2026-11-01", "--lake", lake]) == 2
    assert "--to 2026-11-01 is before --from 2026-11-05" in capsys.readouterr().err


# -------------------------------------------------------------------------------------------------
# every command line the project names
# -------------------------------------------------------------------------------------------------

def command_lines(text: str) -> Iterator[str]:
    """``mlscale <command> ...`` in prose or a message: up to a closing backtick or parenthesis."""
    for match in COMMAND_LINE.finditer(text):
        name, rest = match[1], match[2].strip().rstrip(".,;:")
        if name in COMMANDS or "--" in rest:  # not "mlscale reports", "mlscale model {model}", …
            yield f"mlscale {name} {rest}".strip()


def python_strings(path: Path) -> Iterator[tuple[int, str]]:
    """String literals and f-strings (implicit concatenations joined); a module-level string constant in a
    replacement field is spelled out, any other field stays ``{expression}`` (a placeholder)."""
    tree = ast.parse(path.read_text(), str(path))
    constants = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                 for target in node.targets if isinstance(target, ast.Name)}
    inside_fstrings: set[int] = set()
    for node in ast.walk(tree):
        if id(node) in inside_fstrings:
            continue
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                inside_fstrings.update(id(n) for n in ast.walk(value))
                if isinstance(value, ast.Constant):
                    parts.append(str(value.value))
                elif isinstance(value, ast.FormattedValue) and isinstance(value.value, ast.Name) \
                        and value.value.id in constants:
                    parts.append(constants[value.value.id])
                else:
                    parts.append("{" + ast.unparse(value.value) + "}")
            yield node.lineno, "".join(parts)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def shell_command_lines(script: str) -> Iterator[list[str]]:
    """The words of each ``mlscale`` invocation in shell text (up to a pipe, redirection, ``&&`` …)."""
    for line in script.replace("\\\n", " ").splitlines():
        if line.lstrip().startswith("#") or "mlscale " not in line:
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            words = list(lexer)
        except ValueError:  # an unbalanced quote of a multi-line python -c "..."
            continue
        for i, word in enumerate(words):
            if word == "mlscale" and i + 1 < len(words) and re.fullmatch(r"[a-z][a-z-]*", words[i + 1]):
                args = []
                for arg in words[i + 1:]:
                    if re.fullmatch(r"[();<>|&]+", arg):
                        if arg.startswith(">") and args and args[-1].isdigit():
                            args.pop()  # the 2 of 2>/dev/null
                        break
                    args.append(arg)
                yield args


def named_command_lines() -> list[tuple[str, list[str]]]:
    """(where, words after ``mlscale``) of every command line README.md, the library, the DAGs, the plugins,
    the scripts and docker-compose.yaml name."""
    found: list[tuple[str, list[str]]] = []
    for n, line in enumerate((ROOT / "README.md").read_text().splitlines(), 1):
        for text in [*re.findall(r"`(mlscale [^`]+)`", line), *re.findall(r"^\s*(mlscale \S.*)$", line)]:
            found += [(f"README.md:{n}", shlex.split(cmd)[1:]) for cmd in command_lines(text)]
    sources = [*sorted((ROOT / "include" / "mlscale").rglob("*.py")), *sorted((ROOT / "dags").glob("*.py")),
               *sorted((ROOT / "plugins").glob("*.py"))]
    for path in sources:
        for lineno, text in python_strings(path):
            for cmd in command_lines(text):
                found.append((f"{path.relative_to(ROOT)}:{lineno}", shlex.split(cmd)[1:]))
    for path in sorted((ROOT / "scripts").glob("*.sh")):
        found += [(str(path.relative_to(ROOT)), words) for words in shell_command_lines(path.read_text())]
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())

    def strings(node: object) -> Iterator[str]:
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            yield from (s for v in node.values() for s in strings(v))
        elif isinstance(node, list):
            yield from (s for v in node for s in strings(v))

    for text in strings(compose):
        found += [("docker-compose.yaml", words) for words in shell_command_lines(text)]
    return found


NAMED = named_command_lines()


def is_placeholder(word: str) -> bool:
    """``<name>``, ``{version}`` (an f-string field), ``$V1`` (a shell variable), ``N``."""
    return bool(re.search(r"[<{$]", word)) or bool(re.fullmatch(r"[A-Z]", word))


def sample(param: click.Parameter, lake: str) -> str:
    """A value for a placeholder that the real command accepts (and, for safe commands, can run with)."""
    if param.type is ISO_DATE:
        return "2026-11-01"
    if isinstance(param.type, click.Choice):
        return str(param.type.choices[0])
    if isinstance(param.type, click.types.IntParamType | click.types.FloatParamType):
        return "1"
    return {"uri": LANDING, "lake": lake, "model": "fraud_detector", "version": "2"}.get(param.name or "", "cli test")


def concrete(words: list[str], lake: str) -> list[str]:
    """The command line with placeholders filled in, ``[optional]`` brackets dropped and, where it elides
    options (``mlscale approve ... --accept X``, or the bare ``mlscale approve`` of prose), the required
    options added."""
    name, *args = [w.strip("[]") for w in words if w.strip("[]")]
    command = mlscale.commands.get(name)
    assert command is not None, f"mlscale has no command {name!r}"
    by_opt = {opt: p for p in command.params for opt in p.opts}
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    out, elided = [], not args or "..." in args or "…" in args
    for i, word in enumerate(w for w in args if w not in ("...", "…")):
        previous = out[i - 1] if i else ""
        if is_placeholder(word):
            param = by_opt.get(previous) or arguments[0]
            word = sample(param, lake)
        out.append(word)
    if elided:
        given = set(out)
        for param in command.params:
            if param.required and isinstance(param, click.Option) and not given & set(param.opts):
                out += [param.opts[0], sample(param, lake)]
    return [name, *out]


def parse(words: list[str]) -> click.Context:
    """Parse with the real CLI without running: option names, types, choices and required options."""
    name, *args = words
    return mlscale.commands[name].make_context(f"mlscale {name}", args)


def test_the_project_names_command_lines() -> None:
    where = {w.split(":")[0] for w, _ in NAMED}
    assert {"README.md", "include/mlscale/governance/gate.py", "scripts/demo.sh", "docker-compose.yaml"} <= where
    named = {words[0] for _, words in NAMED}
    assert set(SAFE) <= named  # every safe command is named somewhere, so each one runs for real below


@pytest.mark.parametrize(("where", "words"), NAMED, ids=[f"{w} {' '.join(c)}" for w, c in NAMED])
def test_named_command_line_parses(where: str, words: list[str], tmp_path) -> None:
    assert words[0] in COMMANDS, f"{where}: mlscale {' '.join(words)}: no such command"
    line = concrete(words, str(tmp_path / "lake"))
    try:
        parse(line)
    except click.ClickException as exc:
        pytest.fail(f"{where}: mlscale {' '.join(words)}: {exc.format_message()}")
    assert run(words[0], "--help").returncode == 0


def register_versions(lake_root: str, model: str, version: int) -> None:
    """A model with versions 1..``version`` in the lake's embedded registry, ``version``'s files stored."""
    from mlscale.lake import Lake
    from mlscale.training import StoredModel, registry

    lake = Lake(lake_root)
    StoredModel(name=model, version=str(version), algorithm="xgboost", features=("amount",), raw=b"{}").save(lake)
    client = registry.client_for(registry.RegistryConfig.for_lake(lake))
    client.create_registered_model(model)
    for _ in range(version):
        client.create_model_version(model, source=lake.uri(f"models/{model}/{version}"))


def with_option(line: list[str], opt: str, value: str) -> list[str]:
    if opt not in line:
        return [*line, opt, value]
    i = line.index(opt)
    return [*line[:i + 1], value, *line[i + 2:]]


def test_named_command_lines_run_on_a_temporary_lake(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """The first line naming each safe command, placeholders filled in, run through the console script
    against a temporary lake (generate small, first: the others read what it wrote)."""
    lake = str(tmp_path / "lake")
    first: dict[str, list[str]] = {}
    for _, words in NAMED:
        if words[0] in SAFE:
            first.setdefault(words[0], concrete(words, lake))
    assert sorted(first) == sorted(SAFE)
    for name in SAFE:
        line = with_option(first[name], "--lake", lake)
        if name == "generate":  # small, and the day LANDING is of
            for opt, value in (("--start", "2026-11-01"), ("--days", "1"), ("--rows-per-day", "200")):
                line = with_option(line, opt, value)
        if any("--json" in p.opts for p in mlscale.commands[name].params) and "--json" not in line:
            line.append("--json")  # stdout must then hold only the JSON result
        if name == "rollback":
            ctx = parse(line)
            register_versions(lake, ctx.params["model"], int(ctx.params["version"]))
        out = run(*line, env=cli_env)
        assert out.returncode == 0, f"mlscale {' '.join(line)}:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
        check_output(name, out, lake, line)


def check_output(name: str, out: subprocess.CompletedProcess[str], lake: str, line: list[str]) -> None:
    """What each safe command must have printed or written."""
    if name == "generate":
        assert "records for 1 days (2026-11-01 .. 2026-11-01)" in out.stdout
        assert (Path(lake) / LANDING).is_file()
    elif name == "summary":
        assert "landing/transactions" in out.stdout
    elif name == "lifecycle-summary":
        assert "no lifecycle plan yet" in out.stdout
    elif name == "access-report":
        assert json.loads(out.stdout)["lake"] == lake  # stdout holds only the result
    elif name == "lineage":
        doc = json.loads(out.stdout)
        assert [n["key"] for n in doc["start"]] == [LANDING] and doc["lake"] == lake
    elif name == "approve":
        doc = json.loads(out.stdout)
        stored = Path(lake) / "_meta" / "approvals" / doc["model"] / f"{doc['version']}.json"
        assert json.loads(stored.read_text()) == doc
    elif name == "rollback":
        doc = json.loads(out.stdout)
        assert (doc["decision"], doc["champion_after"]) == ("rolled_back", parse(line).params["version"])
    elif name == "timeline":
        assert ": 0 alarm days, 0 versions;" in out.stdout
        assert (Path(lake) / "reports" / "timeline").is_dir()


# -------------------------------------------------------------------------------------------------
# approve, end to end
# -------------------------------------------------------------------------------------------------

def test_approve_writes_the_approval_and_prints_it(tmp_path: Path, cli_env: dict[str, str]) -> None:
    lake = tmp_path / "lake"
    out = run("approve", "--model", "fraud_detector", "--version", "7", "--by", "Ada Reviewer", "--note",
              "reviewed the bias report", "--accept", "insufficient_bias_evidence", "--lake", str(lake), env=cli_env)
    assert out.returncode == 0, out.stderr[-3000:]
    printed = json.loads(out.stdout)  # the JSON only: Airflow's log lines go to stderr
    stored = json.loads((lake / "_meta" / "approvals" / "fraud_detector" / "7.json").read_text())
    assert printed == stored
    assert {k: stored[k] for k in ("model", "version", "approved_by", "note", "accepts")} == {
        "model": "fraud_detector", "version": "7", "approved_by": "Ada Reviewer",
        "note": "reviewed the bias report", "accepts": ["insufficient_bias_evidence"]}

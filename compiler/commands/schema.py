"""`takt schema` as a request: write the JSON Schemas (and the Markdown reference), or with `check`
only compare them, for CI's drift check (exit 1 when a file differs from the models)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compiler.commands.errors import ExitCode


@dataclass(frozen=True)
class SchemaRequest:
    cwd: Path
    out_dir: Path = Path("schemas")
    """Relative to `cwd`, like every path on the command line (so is `markdown`)."""
    markdown: Path | None = None
    check: bool = False


@dataclass(frozen=True)
class SchemaOutcome:
    files: list[Path]
    """Every file, as the user named it (`out_dir` / name, `markdown`)."""
    stale: list[Path]
    """With `check`: the files that differ from the models or are missing (nothing is written)."""
    check: bool

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FINDINGS if self.stale else ExitCode.OK


def run_schema(request: SchemaRequest) -> SchemaOutcome:
    from compiler.commands.files import write_atomic
    from compiler.schema_export import schema_files
    from compiler.spec_reference import reference_markdown

    texts = {request.out_dir / name: text for name, text in schema_files().items()}
    if request.markdown is not None:
        texts[request.markdown] = reference_markdown()
    if request.check:
        stale = [p for p, text in texts.items() if _differs(request.cwd / p, text)]
        return SchemaOutcome(list(texts), stale, check=True)
    for path, text in texts.items():
        write_atomic(request.cwd / path, text)
    return SchemaOutcome(list(texts), [], check=False)


def _differs(path: Path, text: str) -> bool:
    return not path.is_file() or path.read_text(encoding="utf-8") != text

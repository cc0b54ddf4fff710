"""Flags checked before Beam sees them: hyphenated spellings accepted, unknown ones refused.

Beam keeps only the flags it knows and logs a warning for the rest, so ``--batch-size 100``
(the generator's spelling) or ``--bach_size 100`` would run with the defaults and exit 0.
Here every flag must be one that a pipeline options class declares: ``--batch-size`` is read
as ``--batch_size``, and anything else is a :class:`~schemas.errors.ConfigError` naming the
flag (never its value, which may be a secret) and the closest known spelling.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import NoReturn

from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

import beam_pipelines.launch.options  # noqa: F401  (declares the flags every pipeline shares)
from schemas.errors import ConfigError

__all__ = ["checked_flags", "known_flags"]


def known_flags() -> set[str]:
    """Every ``--flag`` a loaded pipeline options class declares (Beam's and ours).

    A pipeline's own flags count once its module is imported.

    >>> {"--runner", "--flink_master", "--batch_size", "--source"} <= known_flags()
    True
    """
    return {name for action in _parser()._actions for name in action.option_strings}


def checked_flags(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``--some-flag`` spellings of known flags rewritten as ``--some_flag``.

    Raises:
        ConfigError: a flag no options class declares, or an argument that belongs to no flag.

    >>> checked_flags(["--batch-size", "100", "--no-resume", "--runner=direct"])
    ['--batch_size', '100', '--no_resume', '--runner=direct']
    >>> checked_flags(["--bach_size=100"])
    Traceback (most recent call last):
    ...
    schemas.errors.ConfigError: --bach_size: no such flag; did you mean --batch_size?
    """
    parser = _parser()
    known = {name for action in parser._actions for name in action.option_strings}
    flags = [_alias(token, known) for token in argv]
    unknown = _unknown(parser, flags)
    for token in unknown:
        if token == "--":
            break
        if token.startswith("-"):
            name = token.split("=", 1)[0]
            raise ConfigError(name, f"no such flag{_suggestion(name, known)}")
        # The argument itself is not shown: it may be a secret typed without its flag.
        raise ConfigError(
            "argv", f"an argument of {len(token)} characters follows no flag that takes one"
        )
    return flags


class _Parser(_BeamArgumentParser):
    """Raises a ConfigError (without the value) where argparse would print usage and exit."""

    def error(self, message: str) -> NoReturn:
        flag, _, problem = message.removeprefix("argument ").partition(": ")
        flag = flag.split("/")[0]
        kind = re.match(r"invalid (\w+) value", problem)
        if kind:
            raise ConfigError(flag, f"expected a value of type {kind.group(1)}")
        if problem.startswith("invalid choice"):
            choices = problem.partition("(choose from ")[2].rstrip(")")
            raise ConfigError(flag, f"expected one of {choices}")
        raise ConfigError(flag, re.sub(r"'[^']*'", "the value", problem) or "invalid")


def _unknown(parser: _BeamArgumentParser, flags: list[str]) -> list[str]:
    try:
        return parser.parse_known_args(flags)[1]
    except ConfigError:
        raise
    except Exception as err:  # an option's own reader failed (Beam parses some values as JSON)
        for index, token in enumerate(flags):
            if token.startswith("--"):
                try:
                    parser.parse_known_args(flags[index : index + 2])
                except Exception:
                    name = token.split("=", 1)[0]
                    problem = f"its value cannot be read ({type(err).__name__})"
                    raise ConfigError(name, problem) from None
        raise ConfigError("argv", f"the flags cannot be read ({type(err).__name__})") from None


def _parser() -> _BeamArgumentParser:
    parser = _Parser(allow_abbrev=False, add_help=False)
    classes: dict[str, type[PipelineOptions]] = {}
    for cls in PipelineOptions.__subclasses__():
        classes.setdefault(str(cls), cls)
    for cls in classes.values():
        cls._add_argparse_args(parser)
    return parser


def _alias(token: str, known: set[str]) -> str:
    if not token.startswith("--") or token == "--":
        return token
    name, sep, value = token.partition("=")
    spelled = "--" + name[2:].replace("-", "_")
    return spelled + sep + value if name not in known and spelled in known else token


def _suggestion(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name.replace("-", "_"), sorted(known), n=1, cutoff=0.75)
    return f"; did you mean {close[0]}?" if close else ""

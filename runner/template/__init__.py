"""Plan strings as templates: the fast path for plain substitution, the Jinja2 sandbox, and their bounds."""

from runner.errors import RenderError
from runner.template.render import (
    BUILTIN_NAMES,
    ENVIRON,
    MAX_BODY,
    MAX_VALUE,
    MAX_VALUES,
    OutputTooLarge,
    check_structure,
    env_refs,
    evaluate,
    is_template,
    names_used,
    preview,
    render,
)
from runner.template.truth import BOOLEAN_WORDS, boolean, truth

__all__ = ["BOOLEAN_WORDS", "BUILTIN_NAMES", "ENVIRON", "MAX_BODY", "MAX_VALUE", "MAX_VALUES", "OutputTooLarge",
           "RenderError", "boolean", "check_structure", "env_refs", "evaluate", "is_template", "names_used", "preview",
           "render", "truth"]

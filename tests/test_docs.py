"""The documentation holds together: its links resolve, and it names every config option."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`+[^`\n]*`+")
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def _prose(text: str) -> str:
    """The text outside fenced code blocks (where a ``#`` is a comment, not a heading)."""
    return FENCE.sub("", text)


def _code(text: str) -> str:
    """Everything written as code: fenced blocks and inline spans."""
    blocks = [m.group(0) for m in FENCE.finditer(text)]
    spans = INLINE_CODE.findall(_prose(text))
    return "\n".join(blocks + spans)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: link text kept, lower case, punctuation dropped."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page, with GitHub's -1, -2 suffixes for repeats."""
    found: set[str] = set()
    repeats: dict[str, int] = {}
    for heading in HEADING.findall(_prose(page.read_text())):
        base = slug(heading)
        n = repeats.get(base, 0)
        repeats[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def _links(page: Path) -> list[str]:
    prose = INLINE_CODE.sub("", _prose(page.read_text()))
    return [t for t in LINK.findall(prose) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


LINKS = [(page, target) for page in PAGES for target in _links(page)]


def test_docs_exist() -> None:
    assert (ROOT / "docs").is_dir() and len(PAGES) > 1
    assert len(LINKS) > 0


@pytest.mark.parametrize(
    ("page", "target"), LINKS, ids=[f"{p.relative_to(ROOT)}->{t}" for p, t in LINKS]
)
def test_relative_link_resolves(page: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    dest = (page.parent / path).resolve() if path else page
    assert dest.exists(), f"{page.relative_to(ROOT)}: {target}: no such file"
    assert ROOT in dest.parents or dest == ROOT, f"{target} leaves the repository"
    if anchor:
        assert dest.suffix == ".md", f"{target}: an anchor on a page that is not markdown"
        assert anchor in anchors(dest), f"{page.relative_to(ROOT)}: {target}: no such heading"


def _keys(node: dict, prefix: str) -> list[str]:
    """Dotted names of every key of a config node and of its nested nodes (not ``_target_``...)."""
    names = []
    for key, value in node.items():
        if key.startswith("_") or key == "defaults":
            continue
        name = f"{prefix}{key}"
        names.append(name)
        if isinstance(value, dict):
            names += _keys(value, f"{name}.")
    return names


def _default_options() -> dict[str, str]:
    """Each group's option chosen by ``conf/config.yaml`` (``model: i3d_tiny``...)."""
    defaults = yaml.safe_load((CONF / "config.yaml").read_text())["defaults"]
    chosen = {}
    for entry in defaults:
        if isinstance(entry, dict):
            ((group, option),) = entry.items()
            if option is not None and (CONF / group / f"{option}.yaml").exists():
                chosen[group] = option
    return chosen


def config_names() -> list[str]:
    """Groups, options and keys the docs must name."""
    groups = sorted(p.name for p in CONF.iterdir() if p.is_dir())
    options = sorted({p.stem for group in groups for p in (CONF / group).rglob("*.yaml")})
    top = yaml.safe_load((CONF / "config.yaml").read_text())
    top.pop("hydra")
    keys = _keys(top, "")
    for group, option in _default_options().items():
        keys += _keys(yaml.safe_load((CONF / group / f"{option}.yaml").read_text()), f"{group}.")
    return groups + options + keys


def test_every_config_group_option_and_key_is_named() -> None:
    code = "\n".join(_code(page.read_text()) for page in PAGES)
    missing = [
        name
        for name in config_names()
        if not re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", code)
    ]
    assert not missing, f"named on no docs page (README included), as code: {missing}"


def test_config_names_cover_the_examples() -> None:
    names = config_names()
    for name in (
        "prune.round_to",
        "finetune.recalibrate_bn",
        "model.min_channels",
        "dataset.generator.period",
        "heuristic",
        "quickstart",
        "slurm",
        "eval.deploy",
    ):
        assert name in names, name


def test_slug_follows_github() -> None:
    assert slug("Reports (`skr-report`)") == "reports-skr-report"
    assert slug("Outputs and the `metrics.json` contract") == "outputs-and-the-metricsjson-contract"
    assert slug("Right after removal, two ways") == "right-after-removal-two-ways"

"""Imports run one way: config <- vendors <- dispatcher <- workers <- cli; the tools outside the product
(sandbox, devtools, bench) may import it, never the reverse, and nothing imports the CLI.

The one exception is deliberate: the CLI's ``sandbox``, ``dev`` and ``bench`` commands import their tool
inside the command's function, so the production image (which does not ship the tools) never loads them.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ["config", "vendors", "dispatcher", "workers", "cli"]
TOOLS = ["sandbox", "devtools", "bench"]


def imports(path: Path) -> list[tuple[str, bool]]:
    """The top-level packages ``path`` imports, each with whether the import sits at module level."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(name.split(".")[0], node in tree.body) for name in names]
    return found


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PRODUCT)
def test_a_product_package_imports_only_the_layers_below_it(package: str) -> None:
    allowed = set(PRODUCT[: PRODUCT.index(package) + 1])
    wrong = [
        (path.relative_to(ROOT).as_posix(), name)
        for path in sources(package)
        for name, at_module_level in imports(path)
        if name in PRODUCT + TOOLS
        and name not in allowed
        and (at_module_level or package != "cli" or name not in TOOLS)
    ]

    assert wrong == []


@pytest.mark.parametrize("package", TOOLS)
def test_no_tool_imports_the_cli(package: str) -> None:
    assert [path for path in sources(package) if "cli" in dict(imports(path))] == []


def test_the_sandbox_is_a_stand_alone_vendor_imitation() -> None:
    """It imitates vendors from their documents, never from our adapters' code."""
    assert [path for path in sources("sandbox") if set(dict(imports(path))) & set(PRODUCT)] == []

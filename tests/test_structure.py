"""The core's shape: modules of one job each, and no module reaching into another's privates.

Read with `ast`, nothing imported: a module over MAX_LINES lines says why in its module
docstring (a line starting with "Over 400 lines:"); no module imports another module's private
name (`from ros_ground.x import _name`) or reaches one through the module
(`x._name`, `ros_ground.x._name`), nor calls a private method of an object it did not define
(`engine._read_views()` outside engine.py; `self._name()` and names the module defines itself
are its own); the runtime pipeline reaches no evaluation module and SAM no LMM module; nothing
outside ros_ground/nodes/ imports ROS or the ROS shells.
"""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ros_ground"
MAX_LINES = 400
REASON = "Over 400 lines:"
NAMEDTUPLE_API = frozenset(("_replace", "_asdict", "_make", "_fields"))  # public, despite the _


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _dotted(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    """Whether `dotted` (ros_ground.x.y) names a module or package of this source tree."""
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _resolve(module: str, level: int, current: str, is_package: bool) -> str:
    """The absolute module an ImportFrom names (relative imports resolved against `current`)."""
    if not level:
        return module or ""
    base = current.split(".")
    base = base[: len(base) - level + (1 if is_package else 0)]
    return ".".join(base + ([module] if module else []))


def _attribute_path(node: ast.AST) -> list[str] | None:
    """["a", "b", "c"] for the expression a.b.c, None for anything but names and attributes."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def private_uses(path: Path) -> list[str]:
    """Where the module at `path` uses another ros_ground module's private name."""
    tree = ast.parse(path.read_text(), str(path))
    current = _dotted(path)
    is_package = path.name == "__init__.py"
    aliases: dict[str, str] = {}  # local name -> the ros_ground module it is bound to
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != "ros_ground":
                    continue
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    aliases["ros_ground"] = "ros_ground"
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(node.module, node.level, current, is_package)
            if source.split(".")[0] != "ros_ground" or source == current:
                continue
            for alias in node.names:
                if _private(alias.name):
                    found.append((node.lineno, f"from {source} import {alias.name}"))
                elif _is_module(f"{source}.{alias.name}"):
                    aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not _private(node.attr):
            continue
        chain = _attribute_path(node)
        if chain is None or chain[0] not in aliases:
            continue
        owner = ".".join([aliases[chain[0]], *chain[1:-1]])
        if owner != current and _is_module(owner):
            found.append((node.lineno, ".".join(chain)))
    found += _foreign_private_calls(tree)
    return [f"{path.relative_to(ROOT)}:{line}: {use}" for line, use in sorted(set(found))]


def _foreign_private_calls(tree: ast.Module) -> list[tuple[int, str]]:
    """Calls `obj._name(...)` of a private name this module never defines (as a function, a
    class, or a name or attribute it assigns), on anything but self, cls, super() or a module
    from outside ros_ground (`os._exit` and `sys._current_frames` are documented API there)."""
    defined, external = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            external |= {a.asname or a.name.split(".")[0] for a in node.names
                         if a.name.split(".")[0] != "ros_ground"}
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            defined.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name, owner = node.func.attr, node.func.value
        if not _private(name) or name in defined or name in NAMEDTUPLE_API:
            continue
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls", *external):
            continue
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) \
                and owner.func.id == "super":
            continue
        found.append((node.lineno, ast.unparse(node.func)))
    return found


def test_no_module_uses_another_modules_private_names():
    found = [use for path in _modules() for use in private_uses(path)]
    assert not found, "private names used across modules:\n" + "\n".join(found)


def _imported(dotted: str) -> set[str]:
    """The ros_ground modules `dotted` imports anywhere in its body (lazy imports included)."""
    path = ROOT.joinpath(*dotted.split("."))
    path = path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__init__.py"
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] == "ros_ground" and _is_module(name)}


def reachable(dotted: str) -> set[str]:
    """Every ros_ground module `dotted` imports, directly or through others."""
    seen, todo = set(), [dotted]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_imported(name))
    return seen


def test_layers_import_downwards():
    """The pipeline does not load the evaluation (its sentence-transformers text similarity) to
    compare masks, and SAM's package needs no LMM code: shared pieces live in the core (masks.py)."""
    assert not reachable("ros_ground.engine") & {"ros_ground.evaluate.metrics", "ros_ground.evaluate"}
    assert not {m for m in reachable("ros_ground.sam")
                if m == "ros_ground.lmm" or m.startswith("ros_ground.lmm.")}


# packages that exist only in a ROS install (the core runs, and its tests pass, from PyPI alone);
# message, service and interface packages are told by their suffix
ROS_ONLY = frozenset(("rclpy", "launch", "launch_ros", "builtin_interfaces", "rosidl_runtime_py",
                      "cv_bridge", "message_filters", "tf2_ros", "ament_index_python"))


def _ros_only(name: str) -> bool:
    top = name.split(".")[0]
    return (top in ROS_ONLY or top.endswith(("_msgs", "_srvs", "_interfaces"))
            or name == "ros_ground.nodes" or name.startswith("ros_ground.nodes."))


def ros_imports(path: Path) -> list[str]:
    """Where the module at `path` imports ROS (rclpy, launch, a message package) or a ROS shell
    (ros_ground.nodes), at module level or inside a function."""
    current = _dotted(path)
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(node.module, node.level, current, is_package)
            names = [source, *(f"{source}.{alias.name}" for alias in node.names)]
        else:
            continue
        ros = [name for name in names if _ros_only(name)]
        if ros:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ros[0]}")
    return found


def _core_modules() -> list[Path]:
    return [path for path in _modules() if "nodes" not in path.relative_to(PACKAGE).parts]


def test_the_core_imports_no_ros():
    """The architecture's rule: everything under ros_ground/ but nodes/ runs without ROS, so
    nothing there imports rclpy, launch, a message package or the ROS shells, not even lazily."""
    found = [use for path in _core_modules() for use in ros_imports(path)]
    assert not found, "ROS imported by the ROS-free core:\n" + "\n".join(found)


def test_the_ros_import_check_catches_each_form(tmp_path, monkeypatch):
    package = tmp_path / "ros_ground"
    (package / "sub").mkdir(parents=True)
    user = package / "sub" / "user.py"
    user.write_text(
        "import os\n"
        "import rclpy\n"
        "from rclpy.node import Node\n"
        "import sensor_msgs.msg as sm\n"
        "from example_interfaces.srv import AddTwoInts\n"
        "from ros_ground_msgs.msg import Phrase\n"
        "from launch_ros.actions import Node\n"
        "import launch\n"
        "def lazy():\n"
        "    from ros_ground.nodes import common\n"
        "    import ros_ground.nodes.grounding_node\n"
        "    from ..nodes.common import qos\n"
        "    from ros_ground import nodes\n"
        "from ros_ground import masks\n"
        "from rosbags.highlevel import AnyReader\n"
        "import launcher\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    lines = sorted({int(use.split(":")[1]) for use in ros_imports(user)})
    assert lines == [2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13]


# the packages whose every module the Layout names in the package's own bullet
LAYOUT_PACKAGES = ("nodes", "lmm", "command", "evaluate")


def test_readmes_layout_names_every_module():
    # a newcomer finds a concern's home from the Layout section: every module of the core is
    # named there, and each module of the packages above in its package's bullet
    # ("- `ros_ground/lmm/` — ..."), where `cli.py` or `regions.py` of another package counts not
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):readme.index("## More")]
    bullets = {}
    for bullet in ("\n" + layout).split("\n- ")[1:]:
        if bullet.startswith("`ros_ground/"):
            bullets[bullet[1:bullet.index("`", 1)]] = bullet
    where = {PACKAGE: layout, **{PACKAGE / name: bullets.get(f"ros_ground/{name}/", "")
                                 for name in LAYOUT_PACKAGES}}
    missing = [str(p.relative_to(PACKAGE)) for folder, text in where.items()
               for p in sorted(folder.glob("*.py"))
               if p.name != "__init__.py" and f"`{p.name}`" not in text]
    assert not missing, f"README's Layout names no {missing}"


def test_readme_sections_named_elsewhere_exist():
    # docs and docstrings send the reader to a README section by name ('README, "Command line"'):
    # each name must open one of its headings
    import re

    prose = re.sub(r"^```.*?^```", "", (ROOT / "README.md").read_text(), flags=re.S | re.M)
    headings = [line.lstrip("#").strip().replace("`", "") for line in prose.splitlines()
                if line.startswith("#")]
    files = [*_modules(), *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "config").glob("*.yaml"))]
    missing = [f"{path.relative_to(ROOT)}: {name!r}" for path in files
               for name in re.findall(r'README(?:\.md)?, "([^"]+)"', path.read_text())
               if not any(h.startswith(name) for h in headings)]
    assert not missing, f"no README heading starts with {missing}"


def test_long_modules_say_why():
    # the rule holds for the benchmark and the scripts as for the package
    long = []
    for path in [*_modules(), *sorted((ROOT / "bench").rglob("*.py")),
                 *sorted((ROOT / "scripts").rglob("*.py"))]:
        text = path.read_text()
        lines = len(text.splitlines())
        if lines <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if not any(line.strip().startswith(REASON) for line in doc.splitlines()):
            long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not long, (f"modules over {MAX_LINES} lines without a line starting with {REASON!r} "
                      "in their docstring (split them by job, or say why not):\n" + "\n".join(long))


def test_the_checks_catch_what_they_name(tmp_path, monkeypatch):
    """The scanner on a made-up package: each kind of private use is found, self's is not."""
    package = tmp_path / "ros_ground"
    (package / "sub").mkdir(parents=True)
    for name in ("__init__.py", "sub/__init__.py", "sub/other.py"):
        (package / name).write_text('"""x"""\n')
    user = package / "user.py"
    user.write_text(
        "import ros_ground.sub.other\n"
        "import ros_ground.sub.other as other_alias\n"
        "from ros_ground.sub import other\n"
        "from ros_ground.sub.other import _hidden, public\n"
        "from . import _relative\n"
        "other._helper()\n"
        "other_alias._state\n"
        "ros_ground.sub.other._helper()\n"
        "public._fine\n"
        "other.__name__\n"
        "engine._read_views(1)\n"
        "row._replace(a=1)\n"
        "class A(other.Base):\n"
        "    def _mine(self):\n"
        "        return super()._base()\n"
        "    def f(self, peer):\n"
        "        return self._mine() + peer._mine()\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = [line.split(": ", 1)[1] for line in private_uses(user)]
    assert found == ["from ros_ground.sub.other import _hidden", "from ros_ground import _relative",
                     "other._helper", "other_alias._state", "ros_ground.sub.other._helper",
                     "engine._read_views"]


_SEVERITIES = frozenset(("debug", "info", "warning", "warn", "error", "fatal"))


def _chosen_severities(tree: ast.AST) -> list[int]:
    """Lines where a logging method is chosen by a condition (`(log.warning if x else
    log.info)(...)`, `say = log.warning if x else log.info`): one call site then logs at two
    severities, which rclpy refuses ("Logger severity cannot be changed between calls")."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.IfExp) and any(
                isinstance(branch, ast.Attribute) and branch.attr in _SEVERITIES
                for branch in (node.body, node.orelse)):
            found.append(node.lineno)
    return found


def test_no_node_logs_at_a_severity_chosen_by_a_condition():
    chosen = [f"{path.relative_to(ROOT)}:{line}" for path in sorted((PACKAGE / "nodes").glob("*.py"))
              for line in _chosen_severities(ast.parse(path.read_text()))]
    assert chosen == [], chosen
    caught = _chosen_severities(ast.parse("say = log.warning if bad else log.info\n"
                                          "(log.error if bad else log.info)('x')\n"))
    assert caught == [1, 2]

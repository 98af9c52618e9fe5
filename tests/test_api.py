"""The public API: every exported name is the function or class, not a same-named module."""

from __future__ import annotations

import types

import trackreid


def test_every_exported_name_resolves_to_an_object_not_a_module() -> None:
    for name in trackreid.__all__:
        value = getattr(trackreid, name)
        assert not isinstance(value, types.ModuleType), name


def test_from_import_gets_functions_even_after_the_submodule_was_imported() -> None:
    import trackreid.centralize  # noqa: F401 - binds the module to the package attribute first
    from trackreid import centralize, extract

    assert callable(centralize) and not isinstance(centralize, types.ModuleType)
    assert callable(extract) and not isinstance(extract, types.ModuleType)


def test_cli_help_does_not_import_torch() -> None:
    """`trackreid --help` and argument errors stay instant: building the parser loads no torch."""
    import subprocess
    import sys

    code = "import sys, trackreid.cli.main as m; m.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"

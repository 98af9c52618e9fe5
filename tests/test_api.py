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

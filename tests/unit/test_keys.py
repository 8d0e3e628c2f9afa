"""The Redis key layout is written twice: keys.py for Python, lua/lib.lua for the functions,
which are given only the `{prefix}` tag and name every key from it. They must agree."""

from __future__ import annotations

import re
from importlib import resources

from conveyor.stores.redis.keys import BASE_FIELDS, Keys


def lua_table(name: str) -> str:
    text = (resources.files("conveyor.stores.redis") / "lua" / "lib.lua").read_text()
    found = re.search(rf"^local {name} = \{{(.*?)\}}", text, re.S | re.M)
    assert found is not None, f"lib.lua has no {name}"
    return found.group(1)


def test_lua_names_every_key_as_keys_py_does() -> None:
    names = re.findall(r"'(\w+)'", lua_table("NAMES"))
    families = set(re.findall(r"(\w+) = true", lua_table("FAMILIES")))
    keys = Keys("app")
    made = [f"{keys.tag}:{name}" + (":" if name in families else "") for name in names]
    assert names == list(BASE_FIELDS)
    assert made == list(keys.base)

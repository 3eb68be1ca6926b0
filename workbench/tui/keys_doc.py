"""``python -m workbench.tui.keys_doc > docs/keys.md``: the keymap doc from the live bindings."""

from __future__ import annotations

from workbench.tui.app import binding_owners
from workbench.tui.keymap import keys_markdown


def main() -> None:
    print(keys_markdown(binding_owners()), end="")


if __name__ == "__main__":
    main()

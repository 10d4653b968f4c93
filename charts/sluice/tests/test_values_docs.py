"""Every value has a one-line `# --` comment, and the README's values table is generated from them."""

from __future__ import annotations

import json

import yaml
from chartlib import CHART, values_table


def test_every_value_has_a_comment():
    text = (CHART / "values.yaml").read_text()
    schema = json.loads((CHART / "values.schema.json").read_text())
    # rows() raises naming every value that lacks a comment
    assert values_table.rows(yaml.safe_load(text), schema, values_table.comments_by_key(text))


def test_readme_values_table_matches_values_yaml():
    readme = (CHART / "README.md").read_text()
    assert values_table.with_table(readme, values_table.table_for()) == readme, (
        "README.md is out of date: run python3 charts/sluice/scripts/values_table.py --write"
    )


def test_comment_parser_ignores_keys_inside_lists():
    text = "# -- groups\ngroups:\n  - name: a\n    size: 1\n# -- other\nother: 2\n"
    assert values_table.comments_by_key(text) == {("groups",): "groups", ("other",): "other"}

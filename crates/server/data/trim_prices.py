#!/usr/bin/env python3
"""Regenerate model_prices.json from LiteLLM's model price table.

Usage:
    pip download --no-deps litellm==VERSION -d /tmp/litellm
    unzip -o /tmp/litellm/litellm-*.whl 'litellm/model_prices_and_context_window_backup.json' -d /tmp/litellm
    python3 trim_prices.py /tmp/litellm/litellm/model_prices_and_context_window_backup.json VERSION > model_prices.json

Keeps only entries priced per token and only the columns Gatehouse reads, as one row per
model (a column list instead of repeated field names keeps the embedded file small).
"""
import json
import sys

FIELDS = [
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "litellm_provider",
    "max_tokens",
    "max_input_tokens",
    "max_output_tokens",
    "mode",
]


def main() -> None:
    path, version = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        table = json.load(f)
    models = {}
    for name, entry in table.items():
        if name == "sample_spec" or not isinstance(entry, dict):
            continue
        if "input_cost_per_token" not in entry and "output_cost_per_token" not in entry:
            continue
        models[name] = [entry.get(field) for field in FIELDS]
    out = {
        "source": f"litellm {version} model_prices_and_context_window.json (MIT)",
        "fields": FIELDS,
        "models": models,
    }
    json.dump(out, sys.stdout, separators=(",", ":"), sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

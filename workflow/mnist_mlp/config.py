"""Checks of the workflow config beyond what the JSON schema can say (orderings, sums, links
between sections). Each message names the key, what is allowed and the value found."""

from __future__ import annotations

import math

# Names of torch.optim classes the sampler may choose from (kept free of a torch import, since
# the Snakefile imports this module when it plans a run).
OPTIMIZERS = ("Adam", "AdamW", "RMSprop", "SGD")


class ConfigError(ValueError):
    pass


def load_schema(schema_path) -> dict:
    import yaml

    with open(schema_path) as handle:
        return yaml.safe_load(handle)


def coerce_numbers(value, schema: dict, root: dict | None = None):
    """``value`` with numeric strings turned into numbers where ``schema`` expects a number.

    Snakemake parses a nested ``--config`` value with YAML's BaseLoader, so in
    ``--config search="{n_trials: 8}"`` the 8 arrives as the string "8"; a user means 8.
    """
    root = root or schema
    if "$ref" in schema:  # the schema uses local references only: "#/$defs/name"
        target = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    kind = schema.get("type")
    if isinstance(value, str) and kind in ("integer", "number"):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if kind == "integer" and number.is_integer() else number
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {
            key: coerce_numbers(
                item, properties.get(key, extra if isinstance(extra, dict) else {}), root
            )
            for key, item in value.items()
        }
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [coerce_numbers(item, schema["items"], root) for item in value]
    return value


def schema_errors(config: dict, schema_path) -> list[str]:
    """Every violation of the JSON schema, as "config key a.b: what is wrong" lines."""
    import jsonschema

    schema = load_schema(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    lines = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.path))):
        key = ".".join(str(part) for part in error.absolute_path) or "(top level)"
        # the description of the value's own schema says what is allowed; for a missing or
        # unknown key the schema at hand is the enclosing object's, so it says nothing useful
        own = error.validator not in ("required", "additionalProperties")
        allowed = error.schema.get("description", "") if own else ""
        lines.append(f"config key {key}: {error.message}" + (f" ({allowed})" if allowed else ""))
    return lines


def _range(config: dict, section: str, key: str) -> None:
    low, high = config[section][key]
    if low > high:
        raise ConfigError(
            f"config key {section}.{key}: expected [low, high] with low <= high, got {[low, high]}"
        )


def check_config(config: dict) -> None:
    """Raise ConfigError naming the first key whose value the schema cannot rule out but the
    workflow cannot use. Call after the JSON schema validation."""
    search, final = config["search"], config["final"]
    low, high = config["search"]["Nh1"]
    if high - low < 2:  # Nh1 in [low + 1, high) and Nh2 in [low, Nh1) must both be non-empty
        raise ConfigError(
            f"config key search.Nh1: expected [low, high] with high >= low + 2, got {[low, high]}"
        )
    _range(config, "search", "dropout")
    _range(config, "search", "log10_lr")
    _range(config, "search", "log10_L2")
    optimizers = search["optimizers"]
    unknown = sorted(set(optimizers) - set(OPTIMIZERS))
    if unknown:
        raise ConfigError(
            f"config key search.optimizers: unknown optimizer(s) {unknown}; allowed: "
            f"{list(OPTIMIZERS)}"
        )
    total = sum(optimizers.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ConfigError(
            "config key search.optimizers: the probabilities must sum to 1, "
            f"got {optimizers} (sum {total:g})"
        )
    if final["top_k"] > search["n_trials"]:
        raise ConfigError(
            f"config key final.top_k: must be at most search.n_trials ({search['n_trials']}), "
            f"got {final['top_k']}"
        )

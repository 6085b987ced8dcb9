"""Packing URIs into RunTask calls."""

from __future__ import annotations

import json

from iiif_process_ecs.batching import (
    OVERRIDES_LIMIT,
    OVERRIDES_MARGIN,
    build_command,
    build_overrides,
    measured_length,
    pack,
)
from iiif_process_ecs.settings import Settings


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "cluster": "iiif",
        "task_definition": "iiif-process:1",
        "container": "iiif-process",
        "subnets": ("subnet-1",),
        "security_groups": ("sg-1",),
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def items(uris: list[str]) -> list[tuple[str, str, str]]:
    return [(uri, uri, "") for uri in uris]


def test_command_is_the_seeds() -> None:
    command = build_command(settings(report=True, report_name="r.json"), ["a.jpg", "b c.png"])
    assert command == [
        "/bin/iiif-process", "-config", "/etc/go-iiif/config.json",
        "-instructions", "/etc/go-iiif/instructions.json",
        "-report", "-report-name", "r.json", "-uri", "a.jpg", "-uri", "b c.png",
    ]  # fmt: skip


def test_command_without_report_has_no_report_flags() -> None:
    assert "-report" not in build_command(settings(), ["a.jpg"])


def test_batch_is_split_by_count() -> None:
    batches, too_large = pack(settings(max_uris_per_task=3), items([f"{i}.jpg" for i in range(7)]))
    assert [len(batch.uris) for batch in batches] == [3, 3, 1]
    assert too_large == []


def test_batch_is_split_by_measured_size() -> None:
    # 1000-byte non-ASCII keys: each costs about 3,000 measured characters.
    uris = [f"{i}" + "é" * 498 + ".jpg" for i in range(5)]
    batches, _ = pack(settings(), items(uris))
    assert len(batches) > 1
    limit = OVERRIDES_LIMIT - OVERRIDES_MARGIN
    for batch in batches:
        assert measured_length(batch.overrides) <= limit
        assert len(json.dumps(batch.overrides)) <= OVERRIDES_LIMIT
    assert [uri for batch in batches for uri in batch.uris] == uris


def test_many_short_keys_fill_a_task_up_to_the_count() -> None:
    batches, _ = pack(settings(), items([f"img-{i:04}.jpg" for i in range(120)]))
    assert [len(batch.uris) for batch in batches] == [50, 50, 20]


def test_measure_is_not_below_the_json_text() -> None:
    overrides = build_overrides(settings(), ["café ü.jpg", "plain.jpg"])
    assert measured_length(overrides) >= len(json.dumps(overrides))
    assert measured_length(overrides) >= len(json.dumps(overrides, ensure_ascii=False).encode())


def test_uri_that_fits_nowhere_is_reported() -> None:
    batches, too_large = pack(settings(), items(["a.jpg", "b.jpg"]), limit=150)
    assert batches == []
    assert [uri for uri, _ in too_large] == ["a.jpg", "b.jpg"]


def test_client_token_is_stable_short_and_batch_specific() -> None:
    first, _ = pack(settings(max_uris_per_task=2), items(["a.jpg", "b.jpg", "c.jpg"]))
    again, _ = pack(settings(max_uris_per_task=2), items(["a.jpg", "b.jpg", "c.jpg"]))
    assert [b.client_token for b in first] == [b.client_token for b in again]
    assert first[0].client_token != first[1].client_token
    for batch in first:
        assert len(batch.client_token) <= 64
        assert all(33 <= ord(char) <= 126 for char in batch.client_token)


def test_client_token_changes_with_cluster_task_identity_and_nonce() -> None:
    base = pack(settings(), items(["a.jpg"]))[0][0].client_token
    assert pack(settings(cluster="other"), items(["a.jpg"]))[0][0].client_token != base
    assert pack(settings(task_definition="x:2"), items(["a.jpg"]))[0][0].client_token != base
    assert pack(settings(), [("a.jpg", "a.jpg", "seq2")])[0][0].client_token != base
    assert pack(settings(), items(["a.jpg"]), nonce="run-2")[0][0].client_token != base


def _uri_measuring(total: int, prefix: str = "k") -> str:
    """An ASCII key whose one-URI overrides measure exactly ``total`` characters."""
    base = measured_length(build_overrides(settings(), [prefix + ".jpg"]))
    return prefix + "x" * (total - base) + ".jpg"


def test_the_default_limit_keeps_512_characters_under_runtasks_8192() -> None:
    fits = _uri_measuring(8192 - 512)
    batches, too_large = pack(settings(), items([fits]))
    assert ([b.uris for b in batches], too_large) == ([(fits,)], [])


def test_one_character_over_the_default_limit_is_refused_by_name() -> None:
    over = _uri_measuring(8192 - 512 + 1)
    batches, too_large = pack(settings(), items([over]))
    assert batches == []
    assert (
        too_large[0][1] == f"the task command for this URI alone measures {7681} > 7680 characters"
    )


def test_a_batch_measuring_exactly_the_limit_is_not_split() -> None:
    one = measured_length(build_overrides(settings(), ["a.jpg"]))
    two = measured_length(build_overrides(settings(), ["a.jpg", "b.jpg"]))
    batches, _ = pack(settings(), items(["a.jpg", "b.jpg"]), limit=two)
    assert [len(b.uris) for b in batches] == [2]
    batches, _ = pack(settings(), items(["a.jpg", "b.jpg"]), limit=two - 1)
    assert ([len(b.uris) for b in batches], one <= two - 1) == ([1, 1], True)


def test_ascii_measures_one_character_each() -> None:
    overrides = build_overrides(settings(), ["a.jpg"])
    assert measured_length(overrides) == len(json.dumps(overrides))


def test_the_first_non_ascii_character_measures_as_percent_encoded_utf_8() -> None:
    plain = measured_length(build_overrides(settings(), ["a.jpg"]))
    assert measured_length(build_overrides(settings(), ["\x80.jpg"])) - plain == 6 - 1


def test_a_three_byte_character_measures_nine() -> None:
    plain = measured_length(build_overrides(settings(), ["a.jpg"]))
    assert measured_length(build_overrides(settings(), ["€.jpg"])) - plain == 9 - 1


def test_a_long_key_is_refused_by_its_own_length_not_its_identity() -> None:
    long_key = "k" * 8000 + ".jpg"
    batches, too_large = pack(settings(), [(long_key, long_key, "")])
    assert (batches, [uri for uri, _ in too_large]) == ([], [long_key])


def test_a_refused_key_is_reported_as_received_not_as_the_task_uri() -> None:
    name = "k" * 8000 + ".jpg"
    _, too_large = pack(settings(strip_paths=True), [("dir/" + name, name, "seq")])
    assert [uri for uri, _ in too_large] == ["dir/" + name]


def test_a_client_token_is_made_for_non_ascii_keys() -> None:
    (batch,), _ = pack(settings(), items(["café.jpg"]))
    assert batch.client_token.startswith("iiif-") and len(batch.client_token) == 64

"""Fossil delta encoder/decoder: round trips through our decoder and the SDKs' decoders."""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from centrifuge.fossil import apply_delta as sdk_apply_delta
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from centrifugo_fast.protocol.fossil import apply_delta, checksum, create_delta

JS_CENTRIFUGE = Path(__file__).resolve().parents[1] / "sdk" / "js" / "node_modules" / "centrifuge"
DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"


def b64(value: int) -> bytes:
    """Reference base-64 number encoding, written independently of the module's."""
    text = ""
    while True:
        text = DIGITS[value % 64] + text
        value //= 64
        if not value:
            return text.encode()


def naive_checksum(data: bytes) -> int:
    padded = data + b"\0" * (-len(data) % 4)
    words = (int.from_bytes(padded[i : i + 4], "big") for i in range(0, len(padded), 4))
    return sum(words) % 2**32


def roundtrip(source: bytes, target: bytes, *, json_safe: bool = False) -> bytes:
    """Encode, then check both our decoder and centrifuge-python's rebuild the target."""
    delta = create_delta(source, target, json_safe=json_safe)
    assert apply_delta(source, delta) == target
    assert bytes(sdk_apply_delta(source, delta)) == target
    if json_safe:
        delta.decode("utf-8")
    return delta


def json_doc(size: int, seed: int = 1) -> bytes:
    """A realistic JSON document of about `size` bytes."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    doc: dict[str, Any] = {"match": "home-away", "minute": 10, "score": [1, 0], "events": events}
    while len(json.dumps(doc)) < size:
        events.append(
            {
                "id": len(events),
                "kind": rng.choice(["pass", "shot", "foul", "corner", "offside"]),
                "player": f"player-{rng.randrange(1000)}",
                "x": round(rng.random() * 100, 2),
                "y": round(rng.random() * 100, 2),
            }
        )
    return json.dumps(doc).encode()


DOC_1K = json_doc(1024)
DOC_64K = json_doc(65536, seed=2)
RNG = random.Random(1234)
BIN_4K = RNG.randbytes(4096)
BIN_64K = RNG.randbytes(65536)


# --- fixed cases ---------------------------------------------------------------------------

CASES: dict[str, tuple[bytes, bytes]] = {
    "both-empty": (b"", b""),
    "identical": (DOC_1K, DOC_1K),
    "identical-tiny": (b"abc", b"abc"),
    "empty-source": (b"", DOC_1K),
    "empty-target": (DOC_1K, b""),
    "different": (DOC_1K, json_doc(1024, seed=99)),
    "different-binary": (RNG.randbytes(1024), RNG.randbytes(1024)),
    "edit-start": (DOC_1K, b"[" + DOC_1K[1:]),
    "insert-start": (DOC_1K, b"  " + DOC_1K),
    "delete-start": (DOC_1K, DOC_1K[7:]),
    "edit-middle": (DOC_1K, DOC_1K[:500] + b"XYZ" + DOC_1K[503:]),
    "insert-middle": (DOC_1K, DOC_1K[:500] + b"inserted" + DOC_1K[500:]),
    "delete-middle": (DOC_1K, DOC_1K[:500] + DOC_1K[540:]),
    "edit-end": (DOC_1K, DOC_1K[:-2] + b"!}"),
    "append-end": (DOC_1K, DOC_1K + b"  "),
    "truncate-end": (DOC_1K, DOC_1K[:-30]),
    "source-is-prefix": (DOC_1K[:700], DOC_1K),
    "target-is-substring": (DOC_1K, DOC_1K[300:700]),
    "swapped-halves": (DOC_1K, DOC_1K[512:] + DOC_1K[:512]),
    "repeated-pattern": (b"0123456789" * 300, b"0123456789" * 150 + b"X" + b"0123456789" * 150),
    "repeated-bytes": (b"\0" * 3000, b"\0" * 1000 + b"\1" + b"\0" * 2500),
    "repeated-block-shift": (b"abcdefghijklmnop" * 100, b"abcdefghijklmnopq" * 100),
    "binary-edits": (BIN_4K, BIN_4K[:100] + b"\xff\x00" + BIN_4K[100:3000] + BIN_4K[3100:]),
    "binary-64k": (BIN_64K, BIN_64K[:30000] + b"\x00\x01\x02" + BIN_64K[30000:]),
    "doc-64k": (DOC_64K, DOC_64K.replace(b'"minute": 10', b'"minute": 11')),
    "tiny-source": (b"abc", b"abcd"),
    "tiny-target": (DOC_1K, b"x"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_roundtrip(case: str) -> None:
    source, target = CASES[case]
    delta = roundtrip(source, target)
    assert delta.startswith(b64(len(target)) + b"\n")
    assert delta.endswith(b64(naive_checksum(target)) + b";")


@pytest.mark.parametrize("case", [c for c in CASES if c.startswith(("edit", "insert", "delete"))])
def test_small_edits_make_small_deltas(case: str) -> None:
    source, target = CASES[case]
    assert len(roundtrip(source, target)) <= 40


@pytest.mark.parametrize(
    "case",
    ["identical", "append-end", "truncate-end", "target-is-substring"]
    + ["swapped-halves", "repeated-pattern", "repeated-bytes", "binary-edits", "binary-64k"]
    + ["doc-64k"],
)
def test_shared_content_is_copied(case: str) -> None:
    source, target = CASES[case]
    assert len(roundtrip(source, target)) < max(64, len(target) // 10)


def test_exact_encodings() -> None:
    assert create_delta(b"", b"") == b"0\n0;"
    assert create_delta(b"", b"hello") == b"5\n5:hello" + b64(naive_checksum(b"hello")) + b";"
    doc = DOC_1K
    assert (
        create_delta(doc, doc) == b64(len(doc)) + b"\n" + b64(len(doc)) + b"@0," + cks(doc) + b";"
    )


def test_different_inputs_give_literal_delta() -> None:
    source, target = CASES["different-binary"]
    delta = roundtrip(source, target)
    head = b64(len(target))
    assert delta == head + b"\n" + head + b":" + target + b64(naive_checksum(target)) + b";"


# --- checksum ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 17467, 17468, 17469, 17472, 300_001])
def test_checksum_sizes(size: int) -> None:
    for data in (os.urandom(size), b"\xff" * size):
        assert checksum(data) == naive_checksum(data)


@given(st.binary(max_size=5000))
def test_checksum_matches_definition(data: bytes) -> None:
    assert checksum(data) == naive_checksum(data)


# --- properties ----------------------------------------------------------------------------


@st.composite
def edited(draw: st.DrawFn, min_size: int = 0, max_edits: int = 5) -> tuple[bytes, bytes]:
    """A source and the target made by a few random edits of it."""
    base = draw(st.sampled_from([b"", b"ab", b"abcdefghijklmnopqrstuvwxyz", b"\x00"]))
    source = draw(st.binary(min_size=min_size, max_size=max(min_size, 3000)))
    if draw(st.booleans()) and base:  # repetitive sources exercise repeated blocks
        source = (base * (len(source) // len(base) + 1))[: len(source)]
    target = bytearray(source)
    for _ in range(draw(st.integers(0, max_edits))):
        pos = draw(st.integers(0, len(target)))
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(st.binary(min_size=1, max_size=16))
        if kind == "insert":
            target[pos:pos] = chunk
        elif kind == "delete":
            del target[pos : pos + len(chunk)]
        else:
            target[pos : pos + len(chunk)] = chunk
    return source, bytes(target)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited())
def test_random_edits_roundtrip(pair: tuple[bytes, bytes]) -> None:
    roundtrip(*pair)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000), st.binary(max_size=2000))
def test_unrelated_inputs_roundtrip(source: bytes, target: bytes) -> None:
    roundtrip(source, target)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited(min_size=1024, max_edits=3))
def test_small_edits_of_large_documents_shrink(pair: tuple[bytes, bytes]) -> None:
    source, target = pair
    assume(len(target) >= 1024)
    assert len(roundtrip(source, target)) < len(target)


# --- json_safe -----------------------------------------------------------------------------

UNICODE = st.text(
    alphabet=st.one_of(
        st.sampled_from('aé€₭😀🎉中文字日本語한국어ß"\\{}:, '),
        st.characters(codec="utf-8"),
    ),
    max_size=600,
)


@st.composite
def edited_text(draw: st.DrawFn) -> tuple[str, str]:
    source = draw(UNICODE)
    target = source
    for _ in range(draw(st.integers(0, 4))):
        pos = draw(st.integers(0, len(target)))
        end = draw(st.integers(pos, min(len(target), pos + 8)))
        target = target[:pos] + draw(UNICODE.map(lambda s: s[:8])) + target[end:]
    return source, target


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited_text())
def test_json_safe_deltas_are_utf8(pair: tuple[str, str]) -> None:
    source, target = (text.encode() for text in pair)
    delta = roundtrip(source, target, json_safe=True)
    text = json.loads(json.dumps(delta.decode("utf-8")))
    assert apply_delta(source, text.encode()) == target


def test_json_safe_never_splits_characters() -> None:
    # "₭" and "€" share their first two bytes: a byte-level match ends inside a character.
    source = ("€" * 100).encode()
    target = ("€" * 50 + "₭" + "€" * 49).encode()
    plain = roundtrip(source, target)
    with pytest.raises(UnicodeDecodeError):
        plain.decode("utf-8")
    safe = roundtrip(source, target, json_safe=True)
    assert "₭".encode() in safe
    assert len(safe) < 30


def test_json_safe_cjk_and_emoji_documents() -> None:
    doc = json.dumps({"text": "日本語のテキスト😀" * 60, "n": 1}, ensure_ascii=False)
    edited_doc = doc.replace('"n": 1', '"n": 2').replace("テキスト😀", "テキスト🎉", 3)
    source, target = doc.encode(), edited_doc.encode()
    delta = roundtrip(source, target, json_safe=True)
    assert len(delta) < len(target) // 4


@pytest.mark.parametrize("target", [b"\xff", b"ok\xc3", b"\xed\xa0\x80", b"abc\x80def"])
def test_json_safe_rejects_non_utf8_target(target: bytes) -> None:
    with pytest.raises(ValueError, match="UTF-8"):
        create_delta(b"abc", target, json_safe=True)


def test_json_safe_with_non_utf8_source() -> None:
    source = b"\x80\x80" + ("€" * 40).encode() + b"\x82\xac"
    target = ("€" * 41).encode()
    roundtrip(source, target, json_safe=True)


# --- malformed deltas ----------------------------------------------------------------------


def cks(data: bytes) -> bytes:
    return b64(naive_checksum(data))


SOURCE = b"hello world, hello fossil"
MALFORMED: dict[str, bytes] = {
    "empty": b"",
    "no-length": b"\n5:hello" + cks(b"hello") + b";",
    "no-newline": b"5",
    "bad-newline": b"5 5:hello" + cks(b"hello") + b";",
    "bad-length-digit": b"5!\n5:hello" + cks(b"hello") + b";",
    "number-too-long": b"000000000005\n5:hello" + cks(b"hello") + b";",
    "only-header": b"5\n",
    "missing-checksum": b"5\n5:hello",
    "missing-semicolon": b"5\n5:hello" + cks(b"hello"),
    "dangling-number": b"5\n5",
    "unknown-op": b"5\n5!hello" + cks(b"hello") + b";",
    "no-count": b"5\n:hello" + cks(b"hello") + b";",
    "copy-no-offset": b"5\n5@," + cks(b"hello") + b";",
    "copy-no-comma": b"5\n5@0" + cks(b"hello") + b";",
    "copy-bad-terminator": b"5\n5@0;" + cks(b"hello") + b";",
    "copy-past-source": b"5\n5@24," + cks(b"hello") + b";",
    "copy-offset-past-source": b"1\n1@Z," + cks(b"h") + b";",
    "literal-past-delta": b"5\n9:hello",
    "longer-than-declared": b"4\n5:hello" + cks(b"hello") + b";",
    "copy-longer-than-declared": b"4\n5@0," + cks(b"hello") + b";",
    "shorter-than-declared": b"6\n5:hello" + cks(b"hello") + b";",
    "bad-checksum": b"5\n5:hello" + b64(naive_checksum(b"hello") + 1) + b";",
    "checksum-no-digits": b"5\n5:hello;",
    "trailing-garbage": b"5\n5:hello" + cks(b"hello") + b";x",
    "trailing-newline": b"5\n5:hello" + cks(b"hello") + b";\n",
    "two-checksums": b"5\n5:hello" + cks(b"hello") + b";" + cks(b"hello") + b";",
}


def test_malformed_table_is_sane() -> None:
    # The well-formed twins of the cases above decode, so each case fails for its own reason.
    assert apply_delta(SOURCE, b"5\n5:hello" + cks(b"hello") + b";") == b"hello"
    assert apply_delta(SOURCE, b"5\n5@0," + cks(b"hello") + b";") == b"hello"
    assert apply_delta(SOURCE, b"1\n1@" + b64(len(SOURCE) - 1) + b"," + cks(b"l") + b";") == b"l"


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_delta_raises(case: str) -> None:
    with pytest.raises(ValueError, match="bad delta"):
        apply_delta(SOURCE, MALFORMED[case])


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_corrupted_deltas_raise_value_error_only(data: st.DataObject) -> None:
    source, target = CASES[
        data.draw(st.sampled_from(["edit-middle", "insert-start", "tiny-target"]))
    ]
    delta = bytearray(create_delta(source, target))
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(delta) - 1))
        action = data.draw(st.sampled_from(["flip", "drop", "insert"]))
        byte = data.draw(st.sampled_from(list(b"0aZ~@,:;\n\xff")))
        if action == "flip":
            delta[pos] = byte if delta[pos] != byte else byte ^ 1
        elif action == "drop":
            del delta[pos]
        else:
            delta.insert(pos, byte)
    try:
        result = apply_delta(source, bytes(delta))
    except ValueError:
        return
    # A corruption that still decodes must at least honour the declared length and checksum.
    assert create_delta(result, result).endswith(cks(result) + b";")


# --- centrifuge-js -------------------------------------------------------------------------

NODE_SCRIPT = r"""
const fs = require("fs");
const [casesPath, pkg] = process.argv.slice(2);
const jsonSdk = require(pkg);
const protoSdk = require(pkg + "/build/protobuf");
const endpoint = "ws://127.0.0.1:9/connection/websocket";
const jsonCodec = new jsonSdk.Centrifuge(endpoint)._codec;
const protoCodec = new protoSdk.Centrifuge(endpoint)._codec;
const reachable = (c, name) =>
  c && typeof c.applyDeltaIfNeeded === "function" && typeof c.name === "function" &&
  c.name() === name;
if (!reachable(jsonCodec, "json") || !reachable(protoCodec, "protobuf")) {
  console.log(JSON.stringify({ unreachable: "Centrifuge._codec.applyDeltaIfNeeded not found" }));
  process.exit(0);
}
const results = JSON.parse(fs.readFileSync(casesPath, "utf8")).map((c) => {
  try {
    if (c.codec === "json") {
      // As on the wire: the previous full payload's bytes, the delta as a JSON string.
      const prev = new TextEncoder().encode(c.source);
      const r = jsonCodec.applyDeltaIfNeeded({ data: c.delta, delta: true }, prev);
      return { ok: true, target: Buffer.from(r.newPrevValue).toString("base64"), data: r.newData };
    }
    const prev = new Uint8Array(Buffer.from(c.source, "base64"));
    const delta = new Uint8Array(Buffer.from(c.delta, "base64"));
    const r = protoCodec.applyDeltaIfNeeded({ data: delta, delta: true }, prev);
    return { ok: true, target: Buffer.from(r.newPrevValue).toString("base64") };
  } catch (e) {
    return { ok: false, error: String(e) };
  }
});
console.log(JSON.stringify({ results }));
"""


def test_centrifuge_js_decoder(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (JS_CENTRIFUGE / "build").is_dir():
        pytest.skip(
            "tests/sdk/js/node_modules/centrifuge is missing (npm ci --prefix tests/sdk/js)"
        )
    # applyDelta is not exported by centrifuge-js 5.x, but each codec calls it from
    # applyDeltaIfNeeded: the JSON codec on a delta string, the protobuf codec on delta bytes.
    unicode_doc = json.dumps({"t": "中文😀é" * 40, "n": 1}, ensure_ascii=False).encode()
    middle = DOC_1K.index(b'"id": 5,')
    json_pairs = [
        (DOC_1K, DOC_1K[:middle] + b'"id": 555,' + DOC_1K[middle + 8 :]),
        (DOC_1K, CASES["insert-start"][1]),
        (DOC_1K, json_doc(1024, seed=5)),
        (b'{"a":1}', DOC_1K),
        (DOC_1K, b"{}"),
        (DOC_1K, DOC_1K),
        (unicode_doc, unicode_doc.replace(b'"n": 1', b'"n": 22').replace("😀".encode(), b"!", 2)),
        (DOC_64K, CASES["doc-64k"][1]),
    ]
    binary_pairs = [CASES[name] for name in ("binary-edits", "binary-64k", "repeated-bytes")]
    binary_pairs += [CASES["different-binary"], (b"", b""), (BIN_4K, b"")]
    cases: list[dict[str, str]] = []
    expected: list[bytes | None] = []
    for source, target in json_pairs:
        delta = create_delta(source, target, json_safe=True)
        cases.append({"codec": "json", "source": source.decode(), "delta": delta.decode()})
        expected.append(target)
    for source, target in binary_pairs:
        delta = create_delta(source, target)
        cases.append({"codec": "protobuf", "source": enc(source), "delta": enc(delta)})
        expected.append(target)
    bad = bytearray(create_delta(*CASES["binary-edits"]))
    bad[-2] = ord("0") if bad[-2] != ord("0") else ord("1")  # corrupt the checksum
    cases.append({"codec": "protobuf", "source": enc(BIN_4K), "delta": enc(bytes(bad))})
    expected.append(None)

    cases_path = tmp_path / "cases.json"
    cases_path.write_text(json.dumps(cases))
    script = tmp_path / "fossil_check.js"
    script.write_text(NODE_SCRIPT)
    proc = subprocess.run(
        [node, str(script), str(cases_path), str(JS_CENTRIFUGE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    if "unreachable" in report:
        pytest.skip(f"centrifuge-js fossil decoder not reachable: {report['unreachable']}")
    results = report["results"]
    assert len(results) == len(expected)
    for case, result, want in zip(cases, results, expected, strict=True):
        if want is None:
            assert not result["ok"], "a corrupted delta must be rejected by centrifuge-js"
            continue
        assert result["ok"], result.get("error")
        assert base64.b64decode(result["target"]) == want
        if case["codec"] == "json":
            assert result["data"] == json.loads(want)


def enc(data: bytes) -> str:
    return base64.b64encode(data).decode()

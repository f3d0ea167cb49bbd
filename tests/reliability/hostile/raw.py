"""Hostile cases written as text or bytes: YAML syntax errors, duplicate keys, ``!!python`` and other
tags, alias bombs and deep nesting, binary and non-UTF-8 files, huge files, paths and symlinks that
escape the repository, named pipes, and CSV or gateway files with bad rows. Each is added to the valid
base (a new file under ``campaigns.d/`` or a replaced data file), so the rest of the repository is fine.
"""

from __future__ import annotations

import gzip
import random

from tests.reliability.hostile.base import CSV, DECL, GATEWAYS, PACKAGE, HostileCase, Urls, documents_copy, dump

HEAD = "apiVersion: reconciler/v1\nkind: Campaign\nmetadata: {name: extra}\n"
EXTRA = HEAD + "spec: {backend: iot, description: Extra campaign}\n"


def added(name: str, text: str | bytes, *, positioned: bool = True, file: str = "zz-broken.yaml") -> HostileCase:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return HostileCase(name, {f"{DECL}/{file}": data}, positioned=positioned)


SYNTAX = {
    "unclosed-flow-mapping": HEAD + "spec: {backend: iot, description: x\n",
    "unclosed-flow-sequence": HEAD + "spec: {backend: iot, packages: [fw, description: x}\n",
    "unclosed-double-quote": HEAD + 'spec: {backend: iot, description: "x}\n',
    "unclosed-single-quote": HEAD + "spec:\n  backend: iot\n  description: 'x\n",
    "bad-indentation": "apiVersion: reconciler/v1\n  kind: Campaign\nmetadata: {name: extra}\n",
    "tab-indentation": HEAD + "spec:\n\tbackend: iot\n",
    "two-colons": HEAD + "spec:\n  backend: iot: other\n",
    "stray-bracket": HEAD + "spec: {backend: iot}]\n",
    "sequence-and-mapping-mixed": HEAD + "spec:\n  - backend: iot\n  description: x\n",
    "invalid-escape": HEAD + 'spec: {backend: iot, description: "bad \\q escape"}\n',
    "yaml-2-directive": "%YAML 2.0\n---\n" + EXTRA,
    "yaml-directive-twice": "%YAML 1.1\n%YAML 1.1\n---\n" + EXTRA,
    "unknown-tag-handle": HEAD + "spec: {backend: iot, description: !e!thing x}\n",
    "anchor-without-node": HEAD + "spec: {backend: iot, description: &a}\n&b\n",
    "block-scalar-bad-indicator": HEAD + "spec:\n  backend: iot\n  description: |x\n    text\n",
    "content-after-document-end": EXTRA + "...\ngarbage: [\n",
    "long-implicit-key": HEAD + "spec:\n  " + "k" * 1100 + ": v\n",
    "reserved-indicator": HEAD + "spec: {backend: @iot}\n",
    "backtick-indicator": HEAD + "spec: {backend: `iot`}\n",
    "control-character": HEAD + "spec: {backend: iot, description: \"bell \x07 here\"}\n",
    "mapping-in-plain-scalar": HEAD + "spec: backend: iot\n",
    "flow-in-block-key": HEAD + "spec:\n  [backend]: iot\n",
    "second-document-broken": EXTRA + "---\n" + HEAD.replace("extra", "extra2") + "spec: {backend: [iot}\n",
    "document-start-garbage": "--- --- ---\n" + EXTRA,
    "bom-in-the-middle": HEAD + "spec: {backend: iot,\ufeff description: x}\n",
    "alias-as-key-undefined": HEAD + "spec: {*nope : iot}\n",
}

DUPLICATE_KEYS = {
    "top-level-kind": "apiVersion: reconciler/v1\nkind: Campaign\nkind: Campaign\nmetadata: {name: extra}\n"
                      "spec: {backend: iot}\n",
    "flow-mapping": HEAD + "spec: {backend: iot, backend: yate}\n",
    "block-mapping": HEAD + "spec:\n  backend: iot\n  description: a\n  description: b\n",
    "nested-metadata": "apiVersion: reconciler/v1\nkind: Campaign\nmetadata:\n  name: extra\n  name: extra2\n"
                       "spec: {backend: iot}\n",
    "quoted-and-plain": HEAD + 'spec: {backend: iot, "backend": iot}\n',
    "spec-twice": HEAD + "spec: {backend: iot}\nspec: {backend: iot}\n",
    "deep": HEAD + "spec:\n  backend: iot\n  rollout:\n    waves: [100%]\n    waves: [100%]\n",
    "single-and-double-quoted": HEAD + "spec: {'backend': iot, \"backend\": iot}\n",
}

TAGS = {
    "python-object": "!!python/object:os.system {}",
    "python-object-apply": '!!python/object/apply:os.system ["touch /tmp/reconciler-pwned"]',
    "python-object-new": '!!python/object/new:os.system ["id"]',
    "python-name": "!!python/name:os.system",
    "python-module": "!!python/module:os",
    "python-tuple": "!!python/tuple [1, 2]",
    "python-str": "!!python/str x",
    "python-unicode": "!!python/unicode x",
    "python-bytes": "!!python/bytes eA==",
    "python-complex": "!!python/complex 1+2j",
    "verbatim-python": '!<tag:yaml.org,2002:python/object/apply:os.system> ["id"]',
    "binary": "!!binary aGk=",
    "set": "!!set {a, b}",
    "omap": "!!omap [a: 1]",
    "pairs": "!!pairs [a: 1]",
    "local-tag": "!custom x",
    "float-on-text": "!!float 1",
    "int-on-text": '!!int "12"',
    "map-on-sequence": "!!map [a, b]",
}

ALIASES = {
    "billion-laughs": "\n".join(["spec: &a0 {backend: iot}"] + [
        f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]) + "\n",
    "wide-laughs": "x0: &a0 [" + ", ".join(["lol"] * 100) + "]\n" + "\n".join(
        f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 100) + "]" for i in range(1, 5)) + "\n",
    "merge-key-bomb": "a: &a {k0: 1, k1: 1, k2: 1, k3: 1, k4: 1, k5: 1, k6: 1, k7: 1}\n" + "\n".join(
        f"b{i}: &b{i} {{<<: [" + ", ".join(["*a"] + [f"*b{j}" for j in range(max(0, i - 8), i)]) + "]}"
        for i in range(60)) + "\n",
    "recursive-alias": "spec: &s\n  backend: iot\n  loop: *s\n",
    "undefined-alias": "spec: {backend: *nope}\n",
    "merge-of-scalar": "spec:\n  description: &s x\n  <<: *s\n",
    "deep-flow-100k": "spec: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "deep-flow-mappings": "spec: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n",
    "deep-block-3000": "spec:\n" + "".join("  " * i + "k:\n" for i in range(1, 3000)),
    "deep-mixed": "spec: " + "[{a: " * 3_000 + "1" + "}]" * 3_000 + "\n",
}


def yaml_text_cases() -> list[HostileCase]:
    cases = [added(f"syntax/{name}", text) for name, text in SYNTAX.items()]
    cases += [added(f"duplicate-key/{name}", text) for name, text in DUPLICATE_KEYS.items()]
    cases += [added(f"tag/{name}", HEAD + f"spec:\n  backend: iot\n  description: {tag}\n")
              for name, tag in TAGS.items()]
    cases.append(added("tag/tag-directive-python", "%TAG !p! tag:yaml.org,2002:python/\n---\n" + HEAD
                       + "spec: {backend: iot, description: !p!name:os.system}\n"))
    cases.append(added("tag/python-on-whole-document", "--- !!python/object:argparse.Namespace\n" + EXTRA))
    cases += [added(f"alias/{name}", HEAD + text) for name, text in ALIASES.items()]
    return cases


def byte_cases() -> list[HostileCase]:
    rng = random.Random(9)
    valid = EXTRA.encode()
    blobs = {
        "random-4k": bytes(rng.getrandbits(8) for _ in range(4096)),
        "random-high-bytes": bytes(rng.randrange(0x80, 0x100) for _ in range(2048)),
        "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(rng.getrandbits(8) for _ in range(200)),
        "gzip-of-yaml": gzip.compress(valid),
        "elf": b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + bytes(rng.getrandbits(8) for _ in range(300)),
        "zip": b"PK\x03\x04" + bytes(rng.getrandbits(8) for _ in range(300)),
        "utf16-le-bom": "\ufeff".encode("utf-16-le") + EXTRA.encode("utf-16-le"),
        "utf16-be-bom": "\ufeff".encode("utf-16-be") + EXTRA.encode("utf-16-be"),
        "utf32": EXTRA.encode("utf-32"),
        "nul-in-the-middle": valid.replace(b"Extra", b"Ex\x00tra"),
        "all-0xff": b"\xff" * 512,
        "latin1-in-value": valid.replace(b"Extra campaign", "Campaña".encode("latin-1")),
        "latin1-in-comment": b"# caf\xe9\n" + valid,
        "latin1-in-key": valid.replace(b"description", b"descripci\xf3n"),
        "overlong-slash": valid.replace(b"Extra", b"Ex\xc0\xaftra"),
        "surrogate-half": valid.replace(b"Extra", b"Ex\xed\xa0\x80tra"),
        "truncated-multibyte-at-end": valid + b"# \xe2\x82",
        "lone-continuation-byte": valid.replace(b"Extra", b"\x80Extra"),
        "cp1252-smart-quotes": valid.replace(b"Extra campaign", b"\x93Extra\x94"),
        "cesu8-emoji": valid.replace(b"Extra", b"\xed\xa0\xbd\xed\xb8\x80"),
    }
    return [added(f"bytes/{name}", data) for name, data in blobs.items()]


def huge_cases() -> list[HostileCase]:
    limit = 10 * 1024 * 1024
    comment_line = b"# " + b"x" * 77 + b"\n"
    cases = [
        added("huge/over-the-size-limit", EXTRA.encode() + comment_line * (limit // len(comment_line) + 2),
              positioned=False),
        added("huge/many-lines-then-an-error", comment_line * 120_000 + (HEAD + "spec: {backend: [iot}\n").encode()),
        added("huge/one-long-line", (HEAD + 'spec: {backend: iot, description: "' + "d" * 4_000_000 + '"}\n').encode()),
        added("huge/many-documents-duplicate-name", "".join(
            f"---\napiVersion: reconciler/v1\nkind: Campaign\nmetadata: {{name: bulk-{i}}}\nspec: {{backend: iot}}\n"
            for i in range(4000)) + "---\n" + EXTRA + "---\n" + EXTRA),
        added("huge/fifty-thousand-gateways-one-bad", HEAD + "spec: {backend: iot}\n---\napiVersion: reconciler/v1\n"
              "kind: GatewayAssignment\nmetadata: {name: extra-all}\nspec:\n  campaign: extra\n  gateways:\n"
              + "".join(f"    - gw-{i:05d}\n" for i in range(10, 50_000)) + "    - not a gateway\n"),
    ]
    return cases


def _with_file(urls: Urls, kind: str, name: str, path: tuple[str, ...], value: object) -> tuple[str, bytes]:
    """The file declaring ``kind/name`` with the value at ``path`` replaced: (file name, new bytes)."""
    docs = documents_copy(urls)
    for file, documents in docs.items():
        for document in documents:
            if document["kind"] == kind and document["metadata"]["name"] == name:
                target = document
                for step in path[:-1]:
                    target = target[step]
                target[path[-1]] = value
                return file, dump(documents)
    raise KeyError(name)


def path_cases(urls: Urls) -> list[HostileCase]:
    """Files named in YAML that escape the root, by ``..``, absolute paths or symlinks, or are not files."""
    def case(name: str, kind: str, resource: str, path: tuple[str, ...], value: object, **extra: object) -> HostileCase:
        file, data = _with_file(urls, kind, resource, path, value)
        return HostileCase(f"path/{name}", {f"{DECL}/{file}": data}, **extra)  # type: ignore[arg-type]

    package = ("Package", "fw", ("spec", "file"))
    outside = {"outside.bin": b"secret material outside the repository\n"}
    cases = [
        case("package-dotdot-etc-passwd", *package, "../../../../../../etc/passwd"),
        case("package-absolute", *package, "/etc/passwd"),
        case("package-home", *package, "~/.ssh/id_rsa"),
        case("package-dotdot-outside", *package, "../../outside.bin", outside=outside),
        case("package-dotdot-through-folder", *package, "../packages/../../outside.bin", outside=outside),
        case("package-backslashes", *package, "..\\..\\outside.bin", outside=outside),
        case("package-file-url", *package, "file:///etc/passwd"),
        case("package-nul", *package, "../packages/fw.bin\x00.txt"),
        case("package-empty", *package, ""),
        case("package-is-a-folder", *package, "../packages"),
        case("package-missing", *package, "../packages/nope.bin"),
        case("recipients-escape", "Campaign", "notice", ("spec", "recipients"), {"file": "../../outside.bin"},
             outside=outside),
        case("recipients-absolute", "Campaign", "notice", ("spec", "recipients"), {"file": "/etc/passwd"}),
        case("gateways-file-escape", "GatewayAssignment", "rollout-munich", ("spec", "gatewaysFile"),
             "../../outside.bin", outside=outside),
        case("gateways-file-proc", "GatewayAssignment", "rollout-munich", ("spec", "gatewaysFile"),
             "/proc/self/environ"),
        case("ca-file-absolute", "Backend", "gw", ("spec", "tls"), {"caFile": "/etc/ssl/certs/ca-certificates.crt"}),
        case("ca-file-escape", "Backend", "gw", ("spec", "tls"), {"caFile": "../../outside.bin"}, outside=outside),
        case("secret-file-absolute", "Backend", "yate", ("spec", "auth", "secret"), {"file": "/etc/shadow"}),
        case("secret-file-escape", "Backend", "yate", ("spec", "auth", "secret"), {"file": "../../outside.bin"},
             outside=outside),
    ]
    return cases


def symlink_cases(urls: Urls) -> list[HostileCase]:
    def package_link(name: str, target: str, **extra: object) -> HostileCase:
        file, data = _with_file(urls, "Package", "fw", ("spec", "file"), "../packages/link.bin")
        return HostileCase(f"symlink/{name}", {f"{DECL}/{file}": data}, symlinks={"packages/link.bin": target},
                           **extra)  # type: ignore[arg-type]

    outside = {"outside.bin": b"secret material outside the repository\n"}
    return [
        package_link("package-to-etc-hostname", "/etc/hostname"),
        package_link("package-relative-outside", "../../outside.bin", outside=outside),
        package_link("package-self-loop", "link.bin"),
        package_link("package-dangling", "nothing-here.bin"),
        package_link("package-to-folder", "../fleets"),
        package_link("package-to-dev-zero", "/dev/zero"),
        package_link("package-to-proc-environ", "/proc/self/environ"),
        HostileCase("symlink/recipients-to-etc-passwd", symlinks={CSV: "/etc/passwd"}),
        HostileCase("symlink/gateways-to-outside", symlinks={GATEWAYS: "../../outside.bin"}, outside=outside),
        HostileCase("symlink/ca-to-outside", symlinks={"sandbox-ca.pem": "/etc/ssl/certs/ca-certificates.crt"}),
        HostileCase("symlink/yaml-to-etc-passwd", symlinks={f"{DECL}/leak.yaml": "/etc/passwd"}, positioned=False),
        HostileCase("symlink/yaml-to-dev-zero", symlinks={f"{DECL}/zero.yaml": "/dev/zero"}, positioned=False),
        HostileCase("symlink/yaml-to-outside", symlinks={f"{DECL}/out.yaml": "../../outside.bin"}, outside=outside,
                    positioned=False),
        HostileCase("symlink/yaml-self-loop", symlinks={f"{DECL}/loop.yaml": "loop.yaml"}, positioned=False),
        _folder_link(urls),
        HostileCase("fifo/yaml-named-pipe", fifos=(f"{DECL}/pipe.yaml",), positioned=False),
        HostileCase("fifo/recipients-named-pipe", {CSV: None}, fifos=(CSV,)),
        HostileCase("fifo/package-named-pipe", {PACKAGE: None}, fifos=(PACKAGE,)),
    ]


def _folder_link(urls: Urls) -> HostileCase:
    """``packages/`` is a symlink to ``/etc`` and the package names ``../packages/hostname``."""
    file, data = _with_file(urls, "Package", "fw", ("spec", "file"), "../packages/hostname")
    return HostileCase("symlink/packages-folder-to-etc", {f"{DECL}/{file}": data, PACKAGE: None},
                       symlinks={"packages": "/etc"})


BAD_NUMBERS = {
    "letters": "49170abc0002", "empty": "", "too-short": "12345", "too-long": "+4917000000000000000",
    "inner-spaces": "+49 170 0000004", "plus-only": "+", "arabic-indic-digits": "٤٩١٧٠٠٠٠٠٠٠١",
    "fullwidth-digits": "４９１７００００００００１", "negative": "-491700000001",
    "scientific": "4.917E+11",
    "decimal": "491700000001.0", "formula": "=HYPERLINK(\"http://evil\")", "parentheses": "+49(170)0000001",
    "excel-apostrophe": "'491700000001", "double-plus": "++491700000001", "unicode-minus": "−491700000001",
}


def csv_cases() -> list[HostileCase]:
    head = "number,area\n+491700000001,Mitte\n"
    cases = [HostileCase(f"csv/{name}", {CSV: (head + f"{number},Pankow\n").encode()})
             for name, number in BAD_NUMBERS.items()]
    cases += [
        HostileCase("csv/unbalanced-quote", {CSV: (head + '"491700000002,Pankow\n').encode()}),
        HostileCase("csv/nul-byte", {CSV: (head + "4917000\x0000002,Pankow\n").encode()}),
        HostileCase("csv/latin1", {CSV: head.encode() + b"+491700000002,K\xf6penick\n"}),
        HostileCase("csv/duplicate-number", {CSV: (head + "+491700000001,Again\n").encode()}),
        HostileCase("csv/header-only", {CSV: b"number,area\n"}),
        HostileCase("csv/empty-file", {CSV: b""}),
        HostileCase("csv/binary", {CSV: bytes(random.Random(3).getrandbits(8) for _ in range(1000))}),
        HostileCase("csv/ten-thousand-rows-one-bad", {CSV: (head + "".join(
            f"+4917{i:08d},x\n" for i in range(2, 10_000)) + "+4917abc,x\n").encode()}),
    ]
    gateways = {
        "space-in-id": "gw 00003", "leading-dash": "-gw-00004", "shell-injection": "gw-00001; rm -rf /",
        "homoglyph": "gw-0000１", "duplicate": "gw-00006", "path": "../gw-00009",
    }
    cases += [HostileCase(f"gateways-file/{name}", {GATEWAYS: (GATEWAYS_HEAD + line + "\n").encode()})
              for name, line in gateways.items()]
    cases.append(HostileCase("gateways-file/empty", {GATEWAYS: b"# nobody\n"}))
    cases.append(HostileCase("gateways-file/binary", {GATEWAYS: b"\x00\x01\x02gw"}))
    return cases


GATEWAYS_HEAD = "# Munich\ngw-00006\n"


def all_cases(urls: Urls) -> list[HostileCase]:
    return [*yaml_text_cases(), *byte_cases(), *huge_cases(), *path_cases(urls), *symlink_cases(urls), *csv_cases()]


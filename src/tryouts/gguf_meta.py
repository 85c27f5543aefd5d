"""What a GGUF file says about its model, read from its header alone (``tryouts card``, ``tryouts memory``, ``hf:``).

A GGUF file (llama.cpp's format) is a header — magic ``GGUF``, a version, key/value metadata, a table of
tensors (name, shape, ggml type, offset) — followed by the tensor data. :func:`read_gguf` reads the header
through a memory map and never touches the tensor data: the architecture numbers
(``{arch}.block_count``, ``{arch}.embedding_length``, ``{arch}.attention.head_count`` ...), the chat template,
the special tokens, and from the tensor table the parameter count (the sum of the tensors' element counts),
the ggml type of every tensor and the exact bytes of the weights.

The ggml type names, block sizes and file types come from the ``gguf`` package (llama.cpp's own Python
library). Its ``GGUFReader`` builds a NumPy view of every element of every array, which takes seconds on
a 50k-token vocabulary; this reader walks past the tokenizer's arrays instead (a few ms) and keeps only
their lengths, looking up the BOS/EOS token strings by index. tests/test_gguf.py checks that both readers
agree on every scalar field and every tensor.

A file that is not a GGUF (or is cut short) raises :class:`NotGGUFError`, a
:class:`~tryouts.errors.UsageError` whose message says so and what to pass instead. Core module: imports
no CLI, web or engine code; ``gguf`` (and NumPy with it) only when a file is read.
"""

from __future__ import annotations

import mmap
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import MissingExtraError, UsageError

__all__ = ["GGUFArray", "GGUFInfo", "GGUFTensor", "NotGGUFError", "find_gguf_files", "is_gguf", "read_gguf"]

MAGIC = b"GGUF"
#: arrays up to this length are decoded into ``metadata``; longer ones are summarized as :class:`GGUFArray`
SMALL_ARRAY = 64
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_TYPE_NAMES = {0: "uint8", 1: "int8", 2: "uint16", 3: "int16", 4: "uint32", 5: "int32", 6: "float32", 7: "bool",
               8: "string", 9: "array", 10: "uint64", 11: "int64", 12: "float64"}
_STRING, _ARRAY = 8, 9
_FTYPE_GUESSED = 1024  # llama.cpp ORs this into general.file_type when it guessed the type


class NotGGUFError(UsageError):
    """The file is not a GGUF file, or its header is cut short or malformed."""

    kind = "not_gguf"


@dataclass(frozen=True)
class GGUFArray:
    """A metadata array too long to decode (a vocabulary, merges): its item type and length."""

    item_type: str
    length: int

    def __str__(self) -> str:
        return f"[{self.length:,} × {self.item_type}]"


@dataclass(frozen=True)
class GGUFTensor:
    """One entry of the tensor table. ``shape`` is in ggml order: ``shape[0]`` is a row's length."""

    name: str
    ggml_type: str
    shape: tuple[int, ...]
    n_elements: int
    n_bytes: int
    #: absolute offset of its data in the file
    offset: int


@dataclass
class GGUFInfo:
    """A GGUF file's header. Numbers the file does not carry are ``None``."""

    path: str
    file_size: int
    version: int
    metadata: dict[str, Any]
    tensors: list[GGUFTensor]
    #: where the tensor data starts (the header's size, aligned)
    data_offset: int
    bos_token: str | None = None
    eos_token: str | None = None
    notes: list[str] = field(default_factory=list)

    # ---- metadata by name

    def get(self, key: str, default: Any = None) -> Any:
        """A metadata value by its full key (``general.name``)."""
        return self.metadata.get(key, default)

    def arch_get(self, key: str, default: Any = None) -> Any:
        """An architecture key without its prefix: ``arch_get("block_count")`` reads ``llama.block_count``."""
        return self.metadata.get(f"{self.architecture}.{key}", default)

    def arch_int(self, key: str) -> int | None:
        """:meth:`arch_get` as an int; a per-layer array gives its largest value."""
        value = self.arch_get(key)
        if isinstance(value, list):
            value = max(value) if value else None
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    @property
    def architecture(self) -> str | None:
        value = self.metadata.get("general.architecture")
        return str(value) if value is not None else None

    @property
    def name(self) -> str | None:
        value = self.metadata.get("general.name")
        return str(value) if value else None

    @property
    def context_length(self) -> int | None:
        return self.arch_int("context_length")

    @property
    def embedding_length(self) -> int | None:
        return self.arch_int("embedding_length")

    @property
    def block_count(self) -> int | None:
        return self.arch_int("block_count")

    @property
    def feed_forward_length(self) -> int | None:
        return self.arch_int("feed_forward_length")

    @property
    def head_count(self) -> int | None:
        return self.arch_int("attention.head_count")

    @property
    def head_count_kv(self) -> int | None:
        """KV heads; the file may leave the key out when they equal the attention heads."""
        kv = self.arch_int("attention.head_count_kv")
        return kv if kv is not None else self.head_count

    @property
    def head_dim(self) -> int | None:
        key = self.arch_int("attention.key_length")
        if key is not None:
            return key
        h, n = self.embedding_length, self.head_count
        return h // n if h and n else None

    @property
    def vocab_size(self) -> int | None:
        """``{arch}.vocab_size``, else the tokenizer's length, else the token embedding's rows."""
        size = self.arch_int("vocab_size")
        tokens = self.metadata.get("tokenizer.ggml.tokens")
        if size is None and tokens is not None:
            size = tokens.length if isinstance(tokens, GGUFArray) else len(tokens)
        if size is None:
            embd = self.tensor("token_embd.weight")
            size = embd.shape[1] if embd and len(embd.shape) > 1 else None
        return size

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return str(value) if value else None

    @property
    def bos_token_id(self) -> int | None:
        value = self.metadata.get("tokenizer.ggml.bos_token_id")
        return int(value) if value is not None else None

    @property
    def eos_token_id(self) -> int | None:
        value = self.metadata.get("tokenizer.ggml.eos_token_id")
        return int(value) if value is not None else None

    # ---- the tensor table

    def tensor(self, name: str) -> GGUFTensor | None:
        return next((t for t in self.tensors if t.name == name), None)

    @property
    def params(self) -> int:
        """Parameters: the sum of the tensors' element counts."""
        return sum(t.n_elements for t in self.tensors)

    @property
    def tensor_bytes(self) -> int:
        """Bytes of tensor data: the weights as stored (padding between tensors not counted)."""
        return sum(t.n_bytes for t in self.tensors)

    @property
    def type_counts(self) -> dict[str, int]:
        """Tensors per ggml type, most first."""
        return dict(Counter(t.ggml_type for t in self.tensors).most_common())

    @property
    def type_params(self) -> dict[str, int]:
        """Parameters per ggml type, most first."""
        c: Counter[str] = Counter()
        for t in self.tensors:
            c[t.ggml_type] += t.n_elements
        return dict(c.most_common())

    @property
    def file_type(self) -> str | None:
        """The file type llama.cpp records (``Q4_K_M``, ``Q8_0``, ``F16`` ...), else the most used weight type."""
        raw = self.metadata.get("general.file_type")
        if isinstance(raw, int) and not isinstance(raw, bool):
            return _file_type_name(raw)
        quantized = {k: v for k, v in self.type_params.items() if k != "F32"}
        return next(iter(quantized or self.type_params), None)

    @property
    def quantization(self) -> str:
        """One line: the file type and the tensors per ggml type, e.g. ``Q4_1 (Q4_1 ×210, F32 ×61, Q8_0 ×1)``."""
        types = ", ".join(f"{k} ×{v}" for k, v in self.type_counts.items())
        return f"{self.file_type or '?'} ({types})" if types else (self.file_type or "?")

    @property
    def tied_embeddings(self) -> bool:
        """No ``output.weight``: the output layer reuses the token embeddings."""
        return self.tensor("output.weight") is None

    def facts(self) -> dict[str, Any]:
        """The numbers ``tryouts card`` shows (also its JSON's ``gguf`` object)."""
        template = self.chat_template
        return {
            "path": self.path, "file_size": self.file_size, "gguf_version": self.version,
            "architecture": self.architecture, "name": self.name, "params": self.params,
            "file_type": self.file_type, "quantization": self.quantization, "tensor_types": self.type_counts,
            "tensor_bytes": self.tensor_bytes, "bits_per_weight": round(8 * self.tensor_bytes / self.params, 4)
            if self.params else None,
            "context_length": self.context_length, "embedding_length": self.embedding_length,
            "block_count": self.block_count, "feed_forward_length": self.feed_forward_length,
            "head_count": self.head_count, "head_count_kv": self.head_count_kv, "head_dim": self.head_dim,
            "vocab_size": self.vocab_size, "expert_count": self.arch_int("expert_count"),
            "expert_used_count": self.arch_int("expert_used_count"), "tied_embeddings": self.tied_embeddings,
            "tokenizer": self.metadata.get("tokenizer.ggml.model"),
            "bos_token": self.bos_token, "bos_token_id": self.bos_token_id,
            "eos_token": self.eos_token, "eos_token_id": self.eos_token_id,
            "chat_template": bool(template), "chat_template_first_line": _first_line(template),
            "general": {k.removeprefix("general."): _jsonable(v) for k, v in self.metadata.items()
                        if k.startswith("general.") and k not in ("general.architecture", "general.name",
                                                                  "general.file_type")},
        }


# ---------------------------------------------------------------------- reading


def is_gguf(path: str | Path) -> bool:
    """Whether ``path`` is a file that starts with the GGUF magic (reads 4 bytes)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == MAGIC
    except OSError:
        return False


def find_gguf_files(folder: str | Path) -> list[Path]:
    """The ``*.gguf`` files directly in ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).glob("*.gguf") if p.is_file())


def read_gguf(path: str | Path) -> GGUFInfo:
    """Read the header of the GGUF file at ``path`` (metadata and tensor table; no tensor data).

    Raises :class:`NotGGUFError` for a missing file, a folder, or a file that is not a (complete) GGUF
    header, and :class:`~tryouts.errors.MissingExtraError` when the ``gguf`` package is not installed.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        raise NotGGUFError(f"{str(p)!r} is a folder, not a GGUF file: pass the path of a .gguf file.")
    if not p.is_file():
        raise NotGGUFError(f"No such file: {str(p)!r}. Pass the path of a .gguf model file.")
    size = p.stat().st_size
    with p.open("rb") as f:
        head = f.read(4)
        if head != MAGIC:
            raise NotGGUFError(
                f"{str(p)!r} is not a GGUF file: it does not start with the bytes 'GGUF' (it starts with {head!r}). "
                "Pass a .gguf model file (llama.cpp's format), or for a transformers model its folder with "
                "config.json."
            )
        try:
            import gguf
        except ImportError as exc:
            raise MissingExtraError("Reading a GGUF file", "local", "gguf") from exc
        try:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _Parser(buf, str(p), size, gguf).parse()
        except (struct.error, ValueError, IndexError, UnicodeDecodeError, OverflowError) as exc:
            raise NotGGUFError(
                f"{str(p)!r} starts like a GGUF file but its header cannot be read ({type(exc).__name__}: {exc}): "
                "the file is cut short or damaged. Download or convert it again."
            ) from exc


class _Parser:
    """Walks a GGUF header in a memory map (little- or big-endian, versions 2 and 3)."""

    def __init__(self, buf: Any, path: str, size: int, gguf: Any) -> None:
        self.buf, self.path, self.size, self.gguf = buf, path, size, gguf
        self.pos = 4
        self.e = "<"
        self.arrays: dict[str, tuple[int, int, int]] = {}  # key -> (item type, length, offset of first item)

    def _take(self, fmt: str) -> Any:
        value = struct.unpack_from(self.e + fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def _str(self) -> str:
        n = self._take("Q")
        if n > self.size - self.pos:
            raise ValueError(f"a string of {n} bytes at offset {self.pos} runs past the end of the file")
        text = bytes(self.buf[self.pos:self.pos + n]).decode("utf-8")
        self.pos += n
        return text

    def _skip(self, vtype: int, count: int) -> None:
        """Move past ``count`` values of type ``vtype`` without decoding them."""
        if vtype in _SCALARS:
            self.pos += count * struct.calcsize(_SCALARS[vtype])
        elif vtype == _STRING:
            unpack, pos, e = struct.unpack_from, self.pos, self.e + "Q"
            for _ in range(count):
                pos += 8 + unpack(e, self.buf, pos)[0]
            self.pos = pos
        elif vtype == _ARRAY:
            for _ in range(count):
                self._skip(self._take("I"), self._take("Q"))
        else:
            raise ValueError(f"unknown metadata value type {vtype}")
        if self.pos > self.size:
            raise ValueError("metadata runs past the end of the file")

    def _value(self, vtype: int, key: str) -> Any:
        if vtype in _SCALARS:
            return self._take(_SCALARS[vtype])
        if vtype == _STRING:
            return self._str()
        if vtype != _ARRAY:
            raise ValueError(f"unknown metadata value type {vtype} for {key!r}")
        itype, n = self._take("I"), self._take("Q")
        if n <= SMALL_ARRAY:
            return [self._value(itype, key) for _ in range(n)]
        self.arrays[key] = (itype, n, self.pos)
        self._skip(itype, n)
        return GGUFArray(_TYPE_NAMES.get(itype, str(itype)), n)

    def parse(self) -> GGUFInfo:
        version = self._take("I")
        if version & 0xFFFF == 0:  # written on a machine of the other byte order
            self.e, self.pos = ">", 4
            version = self._take("I")
        if version not in (2, 3):
            raise ValueError(f"GGUF version {version} is not supported (versions 2 and 3 are)")
        n_tensors, n_kv = self._take("Q"), self._take("Q")
        if n_tensors > self.size or n_kv > self.size:
            raise ValueError(f"implausible counts ({n_tensors} tensors, {n_kv} metadata keys)")
        meta: dict[str, Any] = {}
        for _ in range(n_kv):
            key = self._str()
            meta[key] = self._value(self._take("I"), key)
        raw = []
        for _ in range(n_tensors):
            name = self._str()
            n_dims = self._take("I")
            if n_dims > 8:
                raise ValueError(f"tensor {name!r} has {n_dims} dimensions")
            dims = tuple(self._take("Q") for _ in range(n_dims))
            raw.append((name, dims, self._take("I"), self._take("Q")))
        align = meta.get("general.alignment", 32)
        if not isinstance(align, int) or align <= 0 or align & (align - 1):
            raise ValueError(f"general.alignment {align!r} is not a power of two")
        data_offset = -(-self.pos // align) * align
        info = GGUFInfo(path=self.path, file_size=self.size, version=version, metadata=meta,
                        tensors=self._tensors(raw, data_offset), data_offset=data_offset)
        info.bos_token, info.eos_token = self._token_text(info.bos_token_id, info.eos_token_id)
        vocab = meta.get("tokenizer.ggml.tokens")
        if isinstance(vocab, list):  # a short vocabulary, decoded with the metadata
            info.bos_token, info.eos_token = (str(vocab[i]) if i is not None and 0 <= i < len(vocab) else None
                                              for i in (info.bos_token_id, info.eos_token_id))
        split = meta.get("split.count")
        if isinstance(split, int) and split > 1:
            info.notes.append(f"this file is part {int(meta.get('split.no', 0)) + 1} of a model split into {split} "
                              "files: parameters and weight bytes count this file's tensors only")
        return info

    def _tensors(self, raw: list[tuple[str, tuple[int, ...], int, int]], data_offset: int) -> list[GGUFTensor]:
        g = self.gguf
        ends = sorted({data_offset + off for _, _, _, off in raw} | {self.size})
        out = []
        for name, dims, type_id, off in raw:
            n = 1
            for d in dims:
                n *= d
            try:
                qtype = g.GGMLQuantizationType(type_id)
                block, type_size = g.GGML_QUANT_SIZES[qtype]
                type_name, n_bytes = qtype.name, n * type_size // block
            except (ValueError, KeyError):  # a type newer than the installed gguf package: size from the offsets
                start = data_offset + off
                type_name = f"type{type_id}"
                n_bytes = next((x for x in ends if x > start), self.size) - start
            out.append(GGUFTensor(name, type_name, dims, n, n_bytes, data_offset + off))
            if data_offset + off + n_bytes > self.size:
                raise ValueError(f"tensor {name!r} runs past the end of the file (cut short?)")
        return out

    def _token_text(self, *ids: int | None) -> tuple[str | None, ...]:
        """The vocabulary's strings at ``ids``, walking the tokens array only as far as needed."""
        wanted = {i for i in ids if i is not None}
        found: dict[int, str] = {}
        tokens = self.arrays.get("tokenizer.ggml.tokens")
        if tokens is not None and tokens[0] == _STRING and wanted:
            _, n, self.pos = tokens
            for i in range(min(n, max(wanted) + 1)):
                if i in wanted:
                    found[i] = self._str()
                else:
                    skip = self._take("Q")  # (not `self.pos += self._take(...)`: that reads pos before _take moves it)
                    self.pos += skip
        return tuple(found.get(i) if i is not None else None for i in ids)


def _file_type_name(raw: int) -> str:
    try:
        import gguf

        name = gguf.LlamaFileType(raw & ~_FTYPE_GUESSED).name
    except (ImportError, ValueError):
        return str(raw)
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def _first_line(text: str | None) -> str | None:
    if not text:
        return None
    return next((line.strip() for line in text.splitlines() if line.strip()), None)


def _jsonable(value: Any) -> Any:
    if isinstance(value, GGUFArray):
        return str(value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value

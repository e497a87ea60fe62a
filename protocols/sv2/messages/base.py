"""Declarative message layouts: a dataclass per message, a compiled codec, one registry.

A message is written once, as a frozen dataclass whose fields carry their wire type::

    @message(extension_type=0, msg_type=0x1A, channel_msg=True)
    @dataclass(frozen=True, slots=True)
    class SubmitSharesStandard(Message):
        channel_id: int = wire(U32)
        ...

`@message` compiles the field list into a codec: consecutive fixed-width fields become one
`struct.Struct`, so a message made only of integers (SubmitSharesStandard) decodes with a single
`unpack_from`, and registers the class under (extension_type, msg_type).
"""

from __future__ import annotations

import dataclasses
import operator
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from protocols.sv2.errors import DecodeError, EncodeError, UnknownMessageError
from protocols.sv2.framing import CHANNEL_MSG_BIT, encode_header
from protocols.sv2.tlv import Tlv, decode_tlvs, encode_tlvs
from protocols.sv2.types import FieldType

__all__ = [
    "REGISTRY",
    "Message",
    "MessageCodec",
    "decode_message",
    "lookup",
    "message",
    "registered_messages",
    "wire",
]

_WIRE_KEY = "sv2"


def wire(field_type: FieldType) -> Any:
    """Declare a dataclass field and its SV2 wire type."""
    return dataclasses.field(metadata={_WIRE_KEY: field_type})


class Message:
    """Base of every SV2 message. Subclasses are frozen slotted dataclasses.

    `tlvs` carries extension TLV fields appended after the message's own fields (only once an
    extension is negotiated). They are not part of equality: they annotate the message.
    """

    __slots__ = ("_tlvs",)

    EXTENSION_TYPE: ClassVar[int]
    MSG_TYPE: ClassVar[int]
    CHANNEL_MSG: ClassVar[bool]
    FIELDS: ClassVar[tuple[tuple[str, FieldType], ...]]
    CODEC: ClassVar[MessageCodec]

    @property
    def tlvs(self) -> tuple[Tlv, ...]:
        return getattr(self, "_tlvs", ())

    def with_tlvs(self: _M, *tlvs: Tlv) -> _M:
        """A copy of this message carrying the given extension TLV fields."""
        copy = dataclasses.replace(self)  # type: ignore[type-var]
        object.__setattr__(copy, "_tlvs", tuple(tlvs))
        return copy

    def encode_payload(self) -> bytes:
        """The message payload (TLVs included), without the 6-byte frame header."""
        payload = self.CODEC.encode(self)
        tlvs = self.tlvs
        return payload + encode_tlvs(tlvs) if tlvs else payload

    @classmethod
    def decode_payload(cls: type[_M], payload: bytes, *, tlvs: bool = False) -> _M:
        """Parse a payload; raises `DecodeError` on any mismatch with the layout.

        With `tlvs=True` (an extension was negotiated) bytes after the last field are parsed
        as TLV fields instead of being rejected.
        """
        return cls.CODEC.decode(payload, tlvs=tlvs)

    def to_frame(self) -> bytes:
        """Header plus payload, as sent on an unencrypted connection."""
        payload = self.encode_payload()
        return (
            encode_header(self.EXTENSION_TYPE, self.MSG_TYPE, len(payload), self.CHANNEL_MSG)
            + payload
        )

    @property
    def extension_type_on_wire(self) -> int:
        """extension_type including the channel_msg bit, as SRI sends it."""
        return self.EXTENSION_TYPE | (CHANNEL_MSG_BIT if self.CHANNEL_MSG else 0)


_M = TypeVar("_M", bound=Message)


@dataclass(frozen=True, slots=True)
class _Run:
    """Consecutive fixed-width fields packed by one struct."""

    struct: struct.Struct
    start: int  # index of the first field in the layout
    count: int
    converts: tuple[tuple[int, FieldType], ...]  # (offset, type) needing `convert` on decode
    checks: tuple[tuple[int, FieldType], ...]  # (offset, type) needing `check` on encode


@dataclass(frozen=True, slots=True)
class _Var:
    """One variable-width field, coded by its type object."""

    ftype: FieldType
    index: int


class MessageCodec:
    """Encoder/decoder compiled from a message's field layout."""

    def __init__(self, cls: type[Message], fields: tuple[tuple[str, FieldType], ...]) -> None:
        self.cls = cls
        self.fields = fields
        names = [name for name, _ in fields]
        if len(names) == 1:
            getter = operator.attrgetter(names[0])
            self._values: Callable[[Any], tuple[Any, ...]] = lambda obj: (getter(obj),)
        elif names:
            self._values = operator.attrgetter(*names)
        else:
            self._values = lambda obj: ()
        self._steps: list[_Run | _Var] = list(self._compile(fields))
        # A layout made of a single fixed-width run gets the one-call path.
        only = self._steps[0] if len(self._steps) == 1 else None
        self._single_struct: struct.Struct | None = None
        if isinstance(only, _Run) and not only.converts:
            self._single_struct = only.struct

    @staticmethod
    def _compile(fields: tuple[tuple[str, FieldType], ...]) -> Iterator[_Run | _Var]:
        run: list[tuple[int, FieldType]] = []

        def flush() -> _Run:
            first = run[0][0]
            return _Run(
                struct=struct.Struct("<" + "".join(t.struct_code or "" for _, t in run)),
                start=first,
                count=len(run),
                converts=tuple((i - first, t) for i, t in run if t.needs_convert),
                checks=tuple(
                    (i - first, t) for i, t in run if type(t).check is not FieldType.check
                ),
            )

        for index, (_, ftype) in enumerate(fields):
            if ftype.struct_code is not None:
                run.append((index, ftype))
                continue
            if run:
                yield flush()
                run = []
            yield _Var(ftype, index)
        if run:
            yield flush()

    def encode(self, obj: Any) -> bytes:
        values = self._values(obj)
        out = bytearray()
        for step in self._steps:
            if isinstance(step, _Run):
                chunk = values[step.start : step.start + step.count]
                for offset, ftype in step.checks:
                    try:
                        ftype.check(chunk[offset])
                    except EncodeError as exc:
                        name = self.fields[step.start + offset][0]
                        raise EncodeError(f"{self.cls.__name__}.{name}: {exc}") from None
                try:
                    out += step.struct.pack(*chunk)
                except (struct.error, OverflowError, TypeError) as exc:
                    raise self._name_culprit(step.start, chunk, exc) from None
            else:
                try:
                    step.ftype.encode_into(values[step.index], out)
                except EncodeError as exc:
                    name = self.fields[step.index][0]
                    raise EncodeError(f"{self.cls.__name__}.{name}: {exc}") from None
        return bytes(out)

    def _name_culprit(self, start: int, chunk: tuple[Any, ...], exc: Exception) -> EncodeError:
        """Re-check a failed packed run field by field so the error names the bad field."""
        for offset, value in enumerate(chunk):
            name, ftype = self.fields[start + offset]
            try:
                ftype.encode(value)
            except EncodeError as field_exc:
                return EncodeError(f"{self.cls.__name__}.{name}: {field_exc}")
        return EncodeError(f"{self.cls.__name__}: {exc}")

    def decode(self, buf: bytes, *, tlvs: bool = False) -> Any:
        if type(buf) is not bytes:
            buf = bytes(buf)  # field decoders return slices, which must be immutable bytes
        single = self._single_struct
        end = len(buf)
        if single is not None:
            if end == single.size:
                return self.cls(*single.unpack_from(buf))
            if not tlvs or end < single.size:
                raise DecodeError(
                    f"{self.cls.__name__}: payload is {end} bytes, expected {single.size}"
                )
            return self._attach_tlvs(self.cls(*single.unpack_from(buf)), buf, single.size)
        pos = 0
        values: list[Any] = []
        try:
            for step in self._steps:
                if isinstance(step, _Run):
                    st = step.struct
                    if pos + st.size > end:
                        raise DecodeError(f"truncated: need {st.size} bytes at offset {pos}")
                    chunk = st.unpack_from(buf, pos)
                    pos += st.size
                    if step.converts:
                        chunk = list(chunk)
                        for offset, ftype in step.converts:
                            chunk[offset] = ftype.convert(chunk[offset])
                    values.extend(chunk)
                else:
                    value, pos = step.ftype.decode_from(buf, pos, end)
                    values.append(value)
        except DecodeError as exc:
            raise DecodeError(f"{self.cls.__name__}: {exc}") from None
        if pos != end:
            if tlvs:
                return self._attach_tlvs(self.cls(*values), buf, pos)
            raise DecodeError(f"{self.cls.__name__}: {end - pos} trailing bytes")
        return self.cls(*values)

    def _attach_tlvs(self, obj: Any, buf: bytes, pos: int) -> Any:
        try:
            parsed = decode_tlvs(buf, pos)
        except DecodeError as exc:
            raise DecodeError(f"{self.cls.__name__}: {exc}") from None
        object.__setattr__(obj, "_tlvs", parsed)
        return obj


#: (extension_type without the channel bit, msg_type) -> message class.
REGISTRY: dict[tuple[int, int], type[Message]] = {}


def message(
    *, extension_type: int, msg_type: int, channel_msg: bool = False
) -> Callable[[type[_M]], type[_M]]:
    """Class decorator: attach wire identity, compile the codec and register the class."""

    def decorate(cls: type[_M]) -> type[_M]:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} must be a dataclass (apply @dataclass first)")
        layout = []
        for f in dataclasses.fields(cls):
            ftype = f.metadata.get(_WIRE_KEY)
            if ftype is None:
                raise TypeError(f"{cls.__name__}.{f.name} has no wire type")
            layout.append((f.name, ftype))
        key = (extension_type, msg_type)
        if key in REGISTRY and REGISTRY[key].__qualname__ != cls.__qualname__:
            raise TypeError(f"{cls.__name__}: {key} already taken by {REGISTRY[key].__name__}")
        cls.EXTENSION_TYPE = extension_type
        cls.MSG_TYPE = msg_type
        cls.CHANNEL_MSG = channel_msg
        cls.FIELDS = tuple(layout)
        cls.CODEC = MessageCodec(cls, cls.FIELDS)
        REGISTRY[key] = cls
        return cls

    return decorate


def lookup(extension_type: int, msg_type: int) -> type[Message]:
    """Message class for a header; the channel_msg bit is ignored (lenient on receive)."""
    cls = REGISTRY.get((extension_type & ~CHANNEL_MSG_BIT, msg_type))
    if cls is None:
        raise UnknownMessageError(extension_type & ~CHANNEL_MSG_BIT, msg_type)
    return cls


def decode_message(
    extension_type: int, msg_type: int, payload: bytes, *, tlvs: bool = False
) -> Message:
    """Decode a payload given the header fields it arrived with."""
    return lookup(extension_type, msg_type).CODEC.decode(payload, tlvs=tlvs)


def registered_messages() -> list[type[Message]]:
    """Every registered message class, ordered by (extension_type, msg_type)."""
    return [REGISTRY[k] for k in sorted(REGISTRY)]

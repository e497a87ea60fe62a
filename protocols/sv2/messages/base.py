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
from typing import Any, ClassVar, TypeVar

from protocols.sv2.errors import DecodeError, EncodeError, UnknownMessageError
from protocols.sv2.framing import CHANNEL_MSG_BIT, encode_header
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
    """Base of every SV2 message. Subclasses are frozen slotted dataclasses."""

    __slots__ = ()

    EXTENSION_TYPE: ClassVar[int]
    MSG_TYPE: ClassVar[int]
    CHANNEL_MSG: ClassVar[bool]
    FIELDS: ClassVar[tuple[tuple[str, FieldType], ...]]
    CODEC: ClassVar[MessageCodec]

    def encode_payload(self) -> bytes:
        """The message payload, without the 6-byte frame header."""
        return self.CODEC.encode(self)

    @classmethod
    def decode_payload(cls: type[_M], payload: bytes) -> _M:
        """Parse a payload; raises `DecodeError` on any mismatch with the layout."""
        return cls.CODEC.decode(payload)

    def to_frame(self) -> bytes:
        """Header plus payload, as sent on an unencrypted connection."""
        payload = self.CODEC.encode(self)
        return (
            encode_header(self.EXTENSION_TYPE, self.MSG_TYPE, len(payload), self.CHANNEL_MSG)
            + payload
        )

    @property
    def extension_type_on_wire(self) -> int:
        """extension_type including the channel_msg bit, as SRI sends it."""
        return self.EXTENSION_TYPE | (CHANNEL_MSG_BIT if self.CHANNEL_MSG else 0)


_M = TypeVar("_M", bound=Message)


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
        self._steps = list(self._compile(fields))
        # A layout made of a single fixed-width run gets the one-call path.
        only = self._steps[0] if len(self._steps) == 1 else None
        self._single_struct: struct.Struct | None = None
        if only is not None and only[0] == "run" and not only[4]:
            self._single_struct = only[1]

    @staticmethod
    def _compile(fields: tuple[tuple[str, FieldType], ...]) -> Iterator[tuple[Any, ...]]:
        run: list[tuple[int, FieldType]] = []

        def flush() -> tuple[Any, ...]:
            st = struct.Struct("<" + "".join(t.struct_code or "" for _, t in run))
            checks = tuple(
                (i - run[0][0], t) for i, t in run if type(t).check is not FieldType.check
            )
            converts = tuple((i - run[0][0], t) for i, t in run if t.needs_convert)
            return ("run", st, run[0][0], len(run), converts, checks)

        for index, (_, ftype) in enumerate(fields):
            if ftype.struct_code is not None:
                run.append((index, ftype))
                continue
            if run:
                yield flush()
                run = []
            yield ("var", ftype, index)
        if run:
            yield flush()

    def encode(self, obj: Any) -> bytes:
        values = self._values(obj)
        out = bytearray()
        for step in self._steps:
            if step[0] == "run":
                _, st, start, count, _, checks = step
                chunk = values[start : start + count]
                for offset, ftype in checks:
                    try:
                        ftype.check(chunk[offset])
                    except EncodeError as exc:
                        name = self.fields[start + offset][0]
                        raise EncodeError(f"{self.cls.__name__}.{name}: {exc}") from None
                try:
                    out += st.pack(*chunk)
                except (struct.error, OverflowError, TypeError) as exc:
                    raise self._name_culprit(start, chunk, exc) from None
            else:
                _, ftype, index = step
                try:
                    ftype.encode_into(values[index], out)
                except EncodeError as exc:
                    raise EncodeError(
                        f"{self.cls.__name__}.{self.fields[index][0]}: {exc}"
                    ) from None
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

    def decode(self, buf: bytes) -> Any:
        if type(buf) is not bytes:
            buf = bytes(buf)  # field decoders return slices, which must be immutable bytes
        single = self._single_struct
        end = len(buf)
        if single is not None:
            if end != single.size:
                raise DecodeError(
                    f"{self.cls.__name__}: payload is {end} bytes, expected {single.size}"
                )
            return self.cls(*single.unpack_from(buf))
        pos = 0
        values: list[Any] = []
        try:
            for step in self._steps:
                if step[0] == "run":
                    st = step[1]
                    if pos + st.size > end:
                        raise DecodeError(f"truncated: need {st.size} bytes at offset {pos}")
                    chunk = st.unpack_from(buf, pos)
                    pos += st.size
                    if step[4]:
                        chunk = list(chunk)
                        for offset, ftype in step[4]:
                            chunk[offset] = ftype.convert(chunk[offset])
                    values.extend(chunk)
                else:
                    value, pos = step[1].decode_from(buf, pos, end)
                    values.append(value)
        except DecodeError as exc:
            raise DecodeError(f"{self.cls.__name__}: {exc}") from None
        if pos != end:
            raise DecodeError(f"{self.cls.__name__}: {end - pos} trailing bytes")
        return self.cls(*values)


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


def decode_message(extension_type: int, msg_type: int, payload: bytes) -> Message:
    """Decode a payload given the header fields it arrived with."""
    return lookup(extension_type, msg_type).CODEC.decode(payload)


def registered_messages() -> list[type[Message]]:
    """Every registered message class, ordered by (extension_type, msg_type)."""
    return [REGISTRY[k] for k in sorted(REGISTRY)]

"""The GDB remote serial protocol's framing: packets, checksums, acknowledgements, escapes, interrupts.

::

    $<payload>#<two hex digits: the payload's byte sum mod 256>     one packet
    +  /  -                                                        ack / "resend" (until no-ack mode)
    0x03                                                           interrupt (outside packets)
    } x                                                            binary escape: x ^ 0x20 for $ # } *

A :class:`Connection` owns one client socket.  A reader thread parses what
arrives: whole packets go to a queue for :meth:`Connection.recv` (the main
thread, while the hart is stopped), an interrupt byte goes to the callback
given (the hart is running then), a bad checksum is answered ``-`` so the
client sends the packet again (in no-ack mode, where nothing is resent, the
packet is delivered as :data:`BAD_PACKET` and answered with an error).  The
reader never raises into the program: a client that sends garbage, stops
mid-packet or closes the socket ends as an end of input (``recv`` returns
None).
"""

from __future__ import annotations

import queue
import socket
import threading
from collections.abc import Callable

INTERRUPT = 0x03
MAX_PACKET = 0x4000  # what the server advertises (PacketSize); longer input is refused
BAD_PACKET = b"\x00bad"  # a packet whose checksum was wrong (delivered only in no-ack mode)
POLL_S = 0.05
_ESCAPED = frozenset(b"$#}*")


def checksum(payload: bytes) -> int:
    return sum(payload) & 0xFF


def frame(payload: bytes) -> bytes:
    """``$payload#cs``."""
    return b"$" + payload + b"#" + f"{checksum(payload):02x}".encode()


def escape_binary(data: bytes) -> bytes:
    """Binary data as the protocol carries it in replies (qXfer, vFile:pread): ``$ # } *`` escaped."""
    if not _ESCAPED.intersection(data):
        return data
    out = bytearray()
    for byte in data:
        if byte in _ESCAPED:
            out += bytes((0x7D, byte ^ 0x20))
        else:
            out.append(byte)
    return bytes(out)


def unescape_binary(data: bytes) -> bytes:
    out = bytearray()
    it = iter(data)
    for byte in it:
        if byte == 0x7D:
            nxt = next(it, None)
            if nxt is None:
                raise ValueError("a binary escape at the end of the data")
            out.append(nxt ^ 0x20)
        else:
            out.append(byte)
    return bytes(out)


class Connection:
    """One debugger connection: packets in (a reader thread) and out (any thread, one at a time)."""

    def __init__(self, sock: socket.socket, *, on_interrupt: Callable[[], None], on_idle: Callable[[], None]) -> None:
        """``on_interrupt()`` runs on the reader thread for each interrupt byte; ``on_idle()`` every
        :data:`POLL_S` while nothing arrives (the server repeats a stop request there)."""
        self._sock = sock
        sock.settimeout(POLL_S)
        self._on_interrupt = on_interrupt
        self._on_idle = on_idle
        self._packets: queue.Queue[bytes | None] = queue.Queue()
        self._send_lock = threading.Lock()
        self._last_sent = b""
        self.ack = True  # until QStartNoAckMode
        self.closed = threading.Event()
        self.bad_checksums = 0
        self._thread = threading.Thread(target=self._read, name="hwsim-gdb-reader", daemon=True)
        self._thread.start()

    # -- out ----------------------------------------------------------------------------------------

    def send(self, payload: bytes) -> None:
        """Send one packet (not waiting for its ack: the client resends nothing we need)."""
        data = frame(payload)
        with self._send_lock:
            self._last_sent = data
            self._sendall(data)

    def _sendall(self, data: bytes) -> None:
        if self.closed.is_set():
            return
        try:
            self._sock.sendall(data)
        except OSError:
            self._close()

    # -- in -----------------------------------------------------------------------------------------

    def recv(self, timeout: float | None = None) -> bytes | None:
        """The next packet's payload; None at the end of input (or when ``timeout`` passes)."""
        if self.closed.is_set() and self._packets.empty():
            return None
        try:
            return self._packets.get(timeout=timeout)
        except queue.Empty:
            return None

    def _read(self) -> None:
        buf = bytearray()
        while not self.closed.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                self._on_idle()
                continue
            except OSError:
                break
            if not data:
                break
            buf += data
            self._parse(buf)
            if len(buf) > 2 * MAX_PACKET:  # a packet that never ends: drop what we have
                buf.clear()
        self._close()

    def _parse(self, buf: bytearray) -> None:
        while buf:
            first = buf[0]
            if first == ord("$"):
                end = buf.find(b"#")
                if end < 0 or len(buf) < end + 3:
                    return  # wait for the rest
                payload, digits = bytes(buf[1:end]), bytes(buf[end + 1 : end + 3])
                del buf[: end + 3]
                self._packet(payload, digits)
            elif first == INTERRUPT:
                del buf[0]
                self._on_interrupt()
            elif first == ord("-"):
                del buf[0]
                if self.ack and self._last_sent:
                    with self._send_lock:
                        self._sendall(self._last_sent)
            else:  # "+", or noise between packets
                del buf[0]

    def _packet(self, payload: bytes, digits: bytes) -> None:
        try:
            good = int(digits, 16) == checksum(payload)
        except ValueError:
            good = False
        if good:
            if self.ack:
                with self._send_lock:
                    self._sendall(b"+")
            self._packets.put(payload if len(payload) <= MAX_PACKET else BAD_PACKET)
            return
        self.bad_checksums += 1
        if self.ack:
            with self._send_lock:
                self._sendall(b"-")
        else:
            self._packets.put(BAD_PACKET)

    def _close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            self._packets.put(None)

    def close(self) -> None:
        """Close the socket (the reader thread ends within :data:`POLL_S`)."""
        self._close()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1)

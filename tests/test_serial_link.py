"""The host side of the benchmark protocol against a Python fake device: framing,
resynchronisation, resends, resets, crashes, silence and fault injection.

No board, QEMU or cross compiler needed (tests/test_serial_qemu.py runs the
same client against the C firmware on QEMU)."""
import os
import random
import struct
import time
import zlib

import numpy as np
import pytest

from tinyengine_tvm.errors import TinyEngineError
from tinyengine_tvm.runtime import client
from tinyengine_tvm.runtime import protocol as proto
from tinyengine_tvm.testing.faults import FaultSpec, FaultyTransport
from tinyengine_tvm.testing.fake_device import FakeDevice

META = {
    "model": "fake_model",
    "inputs": [{"name": "x", "shape": [1, 300], "dtype": "int8", "scale": 0.5, "zero_point": -3},
               {"name": "k", "shape": [4], "dtype": "int32", "scale": None, "zero_point": None}],
    "outputs": [{"name": "y", "shape": [1, 300], "dtype": "int8", "scale": 0.25, "zero_point": 7}],
    "memory": {"arena_bytes": 4096},
}


def reference(inputs):
    x = inputs["x"].astype(np.int32)
    k = int(inputs["k"].sum())
    return {"y": ((x[:, ::-1] + k) % 256 - 128).astype(np.int8)}


def sample(seed):
    rng = np.random.default_rng(seed)
    return {"x": rng.integers(-128, 128, size=(1, 300), dtype=np.int8),
            "k": rng.integers(-1000, 1000, size=(4,), dtype=np.int32)}


@pytest.fixture
def device():
    devs = []

    def make(**kw):
        d = FakeDevice(META, reference, **kw)
        devs.append(d)
        return d

    yield make
    for d in devs:
        d.close()


def client_for(dev, timeout=1.0, retries=4, **faults):
    t = dev.host_transport()
    if faults:
        t = FaultyTransport(t, **faults)
    c = client.DeviceClient(t, timeout=timeout, retries=retries)
    assert c.wait_boot(2.0) is not None or faults
    return c


# --------------------------------------------------------------------------- frames
def test_frame_layout_and_crcs():
    f = proto.encode_frame(0x04, 7, b"\x01\x02\x03")
    assert f[:2] == b"\xa5\x5a" and f[2:4] == b"\x03\x00" and f[4] == 4 and f[5] == 7
    assert f[6] == proto.crc8(f[2:6])
    assert struct.unpack("<I", f[-4:])[0] == zlib.crc32(f[2:-4])
    assert proto.crc8(b"123456789") == 0xF4  # CRC-8/SMBUS check value


def test_decoder_resyncs_across_garbage_splits_and_damage():
    rng = random.Random(5)
    frames = [proto.encode_frame(0x81, i + 1, bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 200))))
              for i in range(30)]
    stream = bytearray()
    damaged = set()
    for i, f in enumerate(frames):
        stream += bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 40)))  # garbage between frames
        stream += b"\xa5\x5a\xa5"                                                   # false starts
        if i % 7 == 3 and len(f) > 12:                                              # a damaged payload
            f = bytearray(f)
            f[9] ^= 0x10
            damaged.add(i + 1)
        stream += f
    dec = proto.FrameDecoder()
    got = []
    pos = 0
    while pos < len(stream):  # arbitrary chunking
        n = rng.randrange(1, 50)
        got += dec.feed(bytes(stream[pos:pos + n]))
        pos += n
    good = [f for f in got if f.ok]
    assert [f.seq for f in good] == [i + 1 for i in range(30) if i + 1 not in damaged]
    assert {f.seq for f in got if not f.ok} >= damaged
    for f in good:
        assert proto.encode_frame(f.cmd, f.seq, f.payload) == frames[f.seq - 1]
    assert dec.garbage_bytes > 0


# --------------------------------------------------------------------------- client
def test_describe_run_and_read_back(device):
    dev = device()
    c = client_for(dev)
    desc = c.describe()
    assert desc["model"] == "fake_model" and desc["unit"] == "cycles" and desc["counter_hz"] == 100_000_000
    assert desc["inputs"][0] == {"name": "x", "dtype": "int8", "shape": [1, 300], "bytes": 300, "scale": 0.5,
                                 "zero_point": -3}
    assert desc["inputs"][1]["scale"] is None
    model = client.DeviceModel(c, META)
    for seed in range(3):
        out, rep = model.run(sample(seed), number=4, repeat=3)
        np.testing.assert_array_equal(out["y"], reference(sample(seed))["y"])
    assert rep["cycles"] == 1000 and rep["repeat"] == 3 and rep["number"] == 4
    assert rep["ms_summary"]["mean"] == pytest.approx(0.01)
    assert rep["link"]["progress_frames"] >= 9 and rep["link"]["resends"] == 0
    assert c.echo(b"hello") == b"hello"


def test_a_board_without_host_files_gets_its_inputs_over_the_link(device, tmp_path):
    """An input directory is only used when HELLO says the device reads host files (a board cannot):
    otherwise the inputs go over the link as always, and nothing is written there."""
    c = client_for(device())
    model = client.DeviceModel(c, META, input_dir=str(tmp_path))
    assert c.describe()["host_files"] is False and model.input_dir is None
    out, _ = model.run(sample(1))
    np.testing.assert_array_equal(out["y"], reference(sample(1))["y"])
    assert os.listdir(tmp_path) == []


def test_device_errors_are_reported(device):
    c = client_for(device())
    c.hello()
    with pytest.raises(proto.DeviceError, match="not ready") as e:
        c.run(1, 0)
    assert e.value.code == proto.ERR_NOT_READY
    c.write_input(0, bytes(300))
    c.write_input(1, bytes(16))
    with pytest.raises(proto.DeviceError, match="input CRC mismatch"):
        c.run(1, 12345)
    with pytest.raises(proto.DeviceError, match="unknown command"):
        c.request(0x33)
    with pytest.raises(proto.DeviceError, match="bad argument"):
        c.request(proto.CMD_WRITE_INPUT, struct.pack("<BI", 0, 299) + b"xy")  # past the end


def test_wrong_model_is_refused(device):
    c = client_for(device())
    other = {**META, "outputs": [{**META["outputs"][0], "zero_point": 8}]}
    with pytest.raises(TinyEngineError, match="does not run this project's model.*zp=7.*zp=8"):
        client.DeviceModel(c, other)
    with pytest.raises(TinyEngineError, match="the device runs model 'fake_model'"):
        client.DeviceModel(c, {**META, "model": "other"})


def test_reset_during_run_is_recovered_once_then_reported(device):
    dev = device(reset_on_run=1)
    model = client.DeviceModel(client_for(dev), META)
    out, _ = model.run(sample(1))  # the first RUN is answered by a BOOT: inputs sent again
    np.testing.assert_array_equal(out["y"], reference(sample(1))["y"])
    assert dev.runs == 2
    # A device that resets on every run: an error, not a loop.
    dev2 = device(reset_on_run={1, 2, 3})
    with pytest.raises(proto.DeviceReset, match="reset twice"):
        client.DeviceModel(client_for(dev2), META).run(sample(2))
    assert dev2.runs == 2


def test_fault_message_is_reported(device):
    dev = device(fault_on_run=1)
    model = client.DeviceModel(client_for(dev), META)
    with pytest.raises(proto.DeviceFault, match="crashed.*fake fault"):
        model.run(sample(0))


def test_reset_command(device):
    dev = device()
    c = client_for(dev)
    model = client.DeviceModel(c, META)
    model.run(sample(0))
    info = c.reset()
    assert info.model == "fake_model"
    with pytest.raises(proto.DeviceError, match="not ready"):
        c.timings()
    out, _ = model.run(sample(3))
    np.testing.assert_array_equal(out["y"], reference(sample(3))["y"])


def test_silent_device_times_out_without_hanging(device):
    dev = device(hang_on_run=1)
    c = client_for(dev, timeout=0.3, retries=1)
    model = client.DeviceModel(c, META)
    t0 = time.monotonic()
    with pytest.raises(proto.LinkError, match="no valid answer to RUN after 2 attempts.*within 0.3 s"):
        model.run(sample(0))
    assert time.monotonic() - t0 < 5
    muted = device()
    c2 = client_for(muted, timeout=0.3, retries=1, mute_after=0)
    with pytest.raises(proto.LinkError, match="no valid answer to HELLO"):
        c2.hello()


def test_closed_link_is_device_gone(device):
    dev = device()
    c = client_for(dev)
    dev.dev_sock.close()
    with pytest.raises(proto.DeviceGone):
        c.hello()


@pytest.mark.parametrize("seed", [1, 2])
def test_noisy_link_gives_exact_results_or_an_error(device, seed):
    dev = device(byte_timeout=0.05)
    spec = FaultSpec(drop=0.002, flip=0.002, garbage=0.002)
    c = client_for(dev, timeout=0.3, retries=6, to_device=spec, from_device=spec, seed=seed)
    model = client.DeviceModel(c, META)
    for s in range(4):
        out, rep = model.run(sample(s), number=2)
        np.testing.assert_array_equal(out["y"], reference(sample(s))["y"])
    counts = c.transport.counts
    assert counts["dropped"] + counts["flipped"] + counts["garbage"] > 0
    assert rep["link"]["resends"] > 0


def test_garbage_only_from_the_device_is_skipped(device):
    dev = device()
    c = client_for(dev)
    dev.dev_sock.sendall(bytes(random.Random(0).getrandbits(8) for _ in range(5000)) + b"\xa5\x5a\x00")
    out, rep = client.DeviceModel(c, META).run(sample(4))
    np.testing.assert_array_equal(out["y"], reference(sample(4))["y"])
    assert c.decoder.garbage_bytes >= 4000


def test_damaged_outputs_are_never_returned(device):
    """Every byte from the device is at risk: results are exact or the run fails."""
    dev = device()
    c = client_for(dev, timeout=0.3, retries=2, from_device=FaultSpec(flip=0.002), seed=9)
    model = None
    ok = failed = 0
    for s in range(6):
        try:
            model = model or client.DeviceModel(c, META)
            out, _ = model.run(sample(s))
        except proto.LinkError:
            failed += 1
            continue
        np.testing.assert_array_equal(out["y"], reference(sample(s))["y"])
        ok += 1
    assert ok + failed == 6 and ok > 0


def test_time_summary_in_milliseconds(device):
    from tinyengine_tvm.runtime.device import format_time

    dev = device(cycles_per_inference=216_000, counter_hz=216_000_000)
    _, rep = client.DeviceModel(client_for(dev), META).run(sample(0), number=5, repeat=3)
    text = format_time(rep)
    assert "fake (python, 216 MHz): 216,000 cycles per inference" in text
    assert "Execution time summary (3 repeats of 5 inferences)" in text
    assert "mean (ms)" in text and "1.0000" in text


# --------------------------------------------------------------------------- serial URLs
def _tcp_bridge(dev):
    """A network serial bridge in front of the fake device: a TCP listener on a free
    loopback port whose one client's bytes are relayed to the device and back."""
    import select
    import socket
    import threading

    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    stop = threading.Event()

    def relay():
        lsock.settimeout(5.0)
        try:
            conn, _ = lsock.accept()
        except OSError:
            return
        with conn:
            ends = {conn: dev.host_sock, dev.host_sock: conn}
            while not stop.is_set():
                ready, _, _ = select.select(list(ends), [], [], 0.05)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    ends[s].sendall(data)

    t = threading.Thread(target=relay, daemon=True)
    t.start()
    return lsock, stop, t


def test_a_board_behind_a_network_serial_bridge_opens_by_url(device):
    """open_serial takes pyserial URLs (socket://HOST:PORT) as well as device paths."""
    dev = device()
    lsock, stop, t = _tcp_bridge(dev)
    url = f"socket://127.0.0.1:{lsock.getsockname()[1]}"
    try:
        with client.open_serial(url, 115200, timeout=1.0) as link:
            assert link.transport.name == url
            out, rep = client.DeviceModel(link.client, META).run(sample(5), number=2)
            np.testing.assert_array_equal(out["y"], reference(sample(5))["y"])
            assert rep["cycles"] == 1000
    finally:
        stop.set()
        t.join(5)
        lsock.close()
    # Nothing listens there any more: a LinkError naming the URL, not a traceback from pyserial.
    with pytest.raises(proto.LinkError, match="cannot open serial port socket://127.0.0.1"):
        client.open_serial(url, 115200, timeout=0.5)
    with pytest.raises(proto.LinkError, match="cannot open serial port nosuch://x"):
        client.open_serial("nosuch://x", 115200, timeout=0.5)

#!/usr/bin/python3
"""Looping H.264 RTSP test server for the CCTV agent's test rig.

Run with the system interpreter (it needs PyGObject + GstRtspServer):

    /usr/bin/python3 test/rig/rtsp_server.py --port 8554 --file clip.mp4 \
        [--mount /stream] [--user U --password P]

* Serves FILE (an MP4 holding H.264 with SPS/PPS repeated on keyframes) at
  rtsp://127.0.0.1:PORT/MOUNT, over RTP/UDP or RTP-over-RTSP (TCP).
* Loops forever: the media is played with segment seeks, and each time the
  clip's segment ends a non-flushing seek back to 0 is issued, so timestamps
  keep increasing across loops (no discontinuity seen by clients).
* Behaves like a live camera: one pipeline shared by all clients, and PLAY
  Range headers are ignored, so a client joining never rewinds the others.
* --user/--password: clients must authenticate (Basic or Digest); anything
  else gets 401.
* Prints "READY port=N" on stdout once listening (N is the bound port, so
  --port 0 picks a free one).
* SIGTERM / SIGINT: exit 0.
* SIGUSR1: the "camera" freezes: the RTSP/TCP session stays up but no more
  video (RTP) is sent; RTCP sender reports keep flowing unless --pause-rtcp
  is given. The pipeline keeps running in real time meanwhile (frames are
  dropped at their due time, no busy loop). A client connecting while frozen
  completes DESCRIBE/SETUP/PLAY and gets at most the one prerolled frame.
  SIGUSR2: resume; sending restarts on the next keyframe so decoders get a
  clean picture, with the clip position advanced by the frozen time.
  Each control signal is acknowledged on stderr with a "control: ..." line.
* The process asks the kernel to SIGTERM it if its parent dies, so a crashed
  test runner does not leave it behind.
"""

import argparse
import ctypes
import os
import signal
import sys
import time
import weakref

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

# Must run before the GObject subclasses below are registered (their vfuncs
# reference GstMessage & co, whose GTypes gst_init registers).
Gst.init(None)

PR_SET_PDEATHSIG = 1


def log(msg):
    try:
        sys.stderr.write("[rtsp_server] %s\n" % msg)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # parent gone (broken pipe): keep serving/exiting regardless


def die_with_parent():
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        # The parent may already be gone (race between fork and prctl).
        if os.getppid() == 1:
            os._exit(0)
    except OSError:
        pass


class SendGate:
    """Process-wide "camera frozen" switch (SIGUSR1 / SIGUSR2)."""

    def __init__(self):
        self.paused = False
        self.silence_rtcp = False  # set from --pause-rtcp
        self.dropped = 0

    def pause(self):
        if not self.paused:
            self.paused = True
            self.dropped = 0
        log("control: paused (SIGUSR1)%s" % (", RTCP silenced too" if self.silence_rtcp else ""))

    def resume(self):
        if self.paused:
            self.paused = False
            log("control: resumed (SIGUSR2), %d frames were dropped" % self.dropped)
        else:
            log("control: resumed (SIGUSR2), was not paused")


GATE = SendGate()


class StreamGate:
    """Buffer probe on one media's h264parse src pad implementing GATE.

    While paused, each access unit is held until its due time on the
    pipeline clock and then dropped: the pipeline keeps advancing in real
    time (as a camera's would) without sending anything, and without
    spinning (nothing reaches the clock-synced sinks while dropping).
    Buffers still pass while the pipeline is not PLAYING, so a new client
    can still connect (DESCRIBE/SETUP/PLAY succeed and it may get the one
    prerolled frame). After a resume, frames are dropped until the next
    keyframe so decoders restart cleanly.
    """

    def __init__(self, media):
        # Weak: the media owns this gate (through its pad probe).
        self.media = weakref.ref(media)
        self.was_paused = False

    def _pipeline(self):
        media = self.media()
        element = media.get_element() if media is not None else None
        return element.get_parent() if element is not None else None

    def _wait_until_due(self, pad, buf):
        pipeline = self._pipeline()
        if pipeline is None:
            return
        clock = pipeline.get_clock()
        seg_event = pad.get_sticky_event(Gst.EventType.SEGMENT, 0)
        if clock is None or seg_event is None or buf.pts == Gst.CLOCK_TIME_NONE:
            return
        running_time = seg_event.parse_segment().to_running_time(Gst.Format.TIME, buf.pts)
        if running_time == Gst.CLOCK_TIME_NONE:
            return
        delay = pipeline.get_base_time() + running_time - clock.get_time()
        if delay > 0:
            # Bounded, in case of a clock/base-time change under our feet.
            time.sleep(min(delay / Gst.SECOND, 0.5))

    def probe(self, pad, info):
        try:
            return self._probe(pad, info)
        except Exception as e:  # never let an exception turn into a busy loop
            log("gate probe error: %r" % (e,))
            time.sleep(0.04)
            return Gst.PadProbeReturn.OK

    def _probe(self, pad, info):
        buf = info.get_buffer()
        if buf is None:
            return Gst.PadProbeReturn.OK
        if GATE.paused:
            pipeline = self._pipeline()
            if pipeline is None:
                return Gst.PadProbeReturn.OK
            _, state, pending = pipeline.get_state(0)
            if state != Gst.State.PLAYING or pending not in (Gst.State.VOID_PENDING, Gst.State.PLAYING):
                return Gst.PadProbeReturn.OK  # let it preroll
            self.was_paused = True
            self._wait_until_due(pad, buf)
            GATE.dropped += 1
            return Gst.PadProbeReturn.DROP
        if self.was_paused:
            if buf.has_flags(Gst.BufferFlags.DELTA_UNIT):
                return Gst.PadProbeReturn.DROP
            self.was_paused = False
        return Gst.PadProbeReturn.OK


def rtcp_gate_probe(_pad, _info):
    if GATE.paused and GATE.silence_rtcp:
        return Gst.PadProbeReturn.DROP
    return Gst.PadProbeReturn.OK


def iterate(it):
    while True:
        res, item = it.next()
        if res == Gst.IteratorResult.OK:
            yield item
        elif res == Gst.IteratorResult.RESYNC:
            it.resync()
        else:
            return


class LoopingMedia(GstRtspServer.RTSPMedia):
    """RTSPMedia that plays its file pipeline in a loop, forever.

    Playback runs in segment-seek mode: at the end of the clip the demuxer
    posts SEGMENT_DONE instead of EOS, and a non-flushing segment seek back
    to 0 continues playback with running time (and thus RTP timestamps)
    still increasing.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.loops = 0
        self.seek_pad = None  # h264parse src pad, set by the factory
        self.gate = None  # StreamGate, set by the factory
        self.started = False
        self.connect("prepared", LoopingMedia._on_prepared)

    def _seek_to_start(self, flush):
        flags = Gst.SeekFlags.SEGMENT
        if flush:
            flags |= Gst.SeekFlags.FLUSH
        event = Gst.Event.new_seek(1.0, Gst.Format.TIME, flags,
                                   Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1)
        # Sent straight towards the demuxer (not to the pipeline, which
        # would fan it out over every sink).
        return self.seek_pad is not None and self.seek_pad.send_event(event)

    def _on_prepared(self):
        if self.started:
            return
        self.started = True
        # RTCP sender reports leave through rtpbin's send_rtcp_src_N pads.
        it = self.get_element().get_parent().iterate_recurse()
        for element in iterate(it):
            factory = element.get_factory()
            if factory is None or factory.get_name() != "rtpbin":
                continue
            for pad in iterate(element.iterate_src_pads()):
                if pad.get_name().startswith("send_rtcp_src"):
                    pad.add_probe(Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST, rtcp_gate_probe)
        ok = self._seek_to_start(flush=True)
        log("media prepared, segment playback %s" % ("on" if ok else "FAILED"))

    def do_handle_message(self, message):
        t = message.type
        if t == Gst.MessageType.SEGMENT_DONE:
            self.loops += 1
            ok = self._seek_to_start(flush=False)
            log("end of clip, loop %d %s" % (self.loops, "ok" if ok else "FAILED"))
            return True
        if t == Gst.MessageType.EOS and self.get_status() == GstRtspServer.RTSPMediaStatus.PREPARED:
            # Should not happen (every seek is made a segment seek); if it
            # does, restart anyway: clients see a timestamp reset (and may
            # have got an RTCP BYE).
            self.loops += 1
            ok = self._seek_to_start(flush=True)
            log("unexpected EOS, restarting with a flushing seek (%s)" % ("ok" if ok else "FAILED"))
            return True
        if t == Gst.MessageType.ERROR:
            err, dbg = message.parse_error()
            log("pipeline error: %s (%s)" % (err.message, dbg))
        return GstRtspServer.RTSPMedia.do_handle_message(self, message)


def report_not_seekable(_pad, info):
    """Upstream query probe: answer SEEKING queries with "not seekable".

    A camera is live: a client joins wherever the stream is. The RTSP server
    only honours a PLAY request's Range header (ffmpeg always sends
    "npt=0.000-") on seekable media; otherwise every client joining would
    seek the shared pipeline back to the start, under the other clients'
    feet. Our own loop seeks do not depend on this query.
    """
    query = info.get_query()
    if query is None or query.type != Gst.QueryType.SEEKING:
        return Gst.PadProbeReturn.OK
    # A fresh SEEKING query already says "not seekable" (and PyGObject's extra
    # reference makes it read-only here anyway): answer it as it is.
    return Gst.PadProbeReturn.HANDLED


def force_segment_seeks(pad, info):
    """Upstream event probe making every seek reaching the demuxer a segment seek.

    Belt and braces: with report_not_seekable() the RTSP server should not
    seek any more, but a plain seek reaching qtdemux would end the clip with
    EOS (and an RTCP BYE, which makes clients stop) instead of SEGMENT_DONE.
    """
    event = info.get_event()
    if event is None or event.type != Gst.EventType.SEEK:
        return Gst.PadProbeReturn.OK
    rate, fmt, flags, start_type, start, stop_type, stop = event.parse_seek()
    if fmt != Gst.Format.TIME or (flags & Gst.SeekFlags.SEGMENT):
        return Gst.PadProbeReturn.OK
    replacement = Gst.Event.new_seek(rate, fmt, flags | Gst.SeekFlags.SEGMENT,
                                     start_type, start, stop_type, stop)
    replacement.set_seqnum(event.get_seqnum())
    # Re-enters this probe, which lets it through since it is a segment seek.
    ok = pad.send_event(replacement)
    log("client seek (start=%s) done as a segment seek: %s" % (start, "ok" if ok else "FAILED"))
    return Gst.PadProbeReturn.DROP


class LoopingFactory(GstRtspServer.RTSPMediaFactory):
    def __init__(self, path):
        super().__init__()
        self.set_media_gtype(LoopingMedia)
        # One pipeline shared by all clients, like a real camera.
        self.set_shared(True)
        quoted = path.replace("\\", "\\\\").replace('"', '\\"')
        self.set_launch(
            '( filesrc location="%s" ! qtdemux name=demux demux.video_0 '
            "! h264parse name=parse ! rtph264pay name=pay0 pt=96 config-interval=1 )" % quoted
        )
        self.connect("media-configure", LoopingFactory._on_media_configure)

    def _on_media_configure(self, media):
        element = media.get_element()
        parse_src = element.get_by_name("parse").get_static_pad("src")
        parse_src.add_probe(Gst.PadProbeType.EVENT_UPSTREAM, force_segment_seeks)
        parse_src.add_probe(Gst.PadProbeType.QUERY_UPSTREAM, report_not_seekable)
        media.gate = StreamGate(media)
        parse_src.add_probe(Gst.PadProbeType.BUFFER, media.gate.probe)
        media.seek_pad = parse_src
        log("new media configured")


def set_auth_methods(auth, methods):
    """GstRTSPAuth.set_supported_methods() takes a flag set, but the GIR types
    GstRTSPAuthMethod as a plain enum, so PyGObject refuses BASIC|DIGEST:
    call the C function directly for that case."""
    basic, digest = GstRtsp.RTSPAuthMethod.BASIC, GstRtsp.RTSPAuthMethod.DIGEST
    if methods == "basic":
        auth.set_supported_methods(basic)
        return "basic"
    if methods == "digest":
        auth.set_supported_methods(digest)
        return "digest"
    try:
        capsule_ptr = ctypes.pythonapi.PyCapsule_GetPointer
        capsule_ptr.restype = ctypes.c_void_p
        capsule_ptr.argtypes = [ctypes.py_object, ctypes.c_char_p]
        lib = ctypes.CDLL("libgstrtspserver-1.0.so.0")
        lib.gst_rtsp_auth_set_supported_methods.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.gst_rtsp_auth_set_supported_methods.restype = None
        lib.gst_rtsp_auth_set_supported_methods(capsule_ptr(auth.__gpointer__, None),
                                                int(basic) | int(digest))
        return "basic+digest"
    except (OSError, AttributeError, ValueError) as e:
        log("cannot enable basic+digest (%s), using digest only" % e)
        auth.set_supported_methods(digest)
        return "digest"


def build_auth(user, password, methods):
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    auth.add_digest(user, password, token)
    # Requests without (valid) credentials get the default token, which has
    # no role, hence no permission: 401.
    return auth, set_auth_methods(auth, methods)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="TCP port (0 = any free)")
    parser.add_argument("--file", required=True, help="MP4 file with H.264 video")
    parser.add_argument("--mount", default="/stream")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--pause-rtcp", action="store_true",
                        help="SIGUSR1 also silences RTCP (default: only RTP stops)")
    parser.add_argument("--auth-methods", choices=["basic", "digest", "both"], default="both")
    args = parser.parse_args()

    if (args.user is None) != (args.password is None):
        parser.error("--user and --password go together")
    if not os.path.isfile(args.file):
        parser.error("no such file: %s" % args.file)
    if not args.mount.startswith("/"):
        parser.error("--mount must start with /")

    die_with_parent()
    GATE.silence_rtcp = args.pause_rtcp

    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))

    factory = LoopingFactory(os.path.abspath(args.file))
    if args.user is not None:
        auth, methods = build_auth(args.user, args.password, args.auth_methods)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_role_from_structure(Gst.Structure.new_empty("user"))
        permissions.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        permissions.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
        factory.set_permissions(permissions)

    else:
        methods = None
    server.get_mount_points().add_factory(args.mount, factory)

    loop = GLib.MainLoop()

    def on_stop(signame):
        loop.quit()
        log("got %s, exiting" % signame)
        return GLib.SOURCE_REMOVE

    def on_usr1():
        GATE.pause()
        return GLib.SOURCE_CONTINUE

    def on_usr2():
        GATE.resume()
        return GLib.SOURCE_CONTINUE

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, on_stop, "SIGTERM")
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, on_stop, "SIGINT")
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, on_usr1)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR2, on_usr2)

    # attach() returns 0 when the socket cannot be created/bound.
    if server.attach(None) == 0:
        log("cannot listen on %s:%s (port in use?)" % (args.address, args.port))
        return 3
    port = server.get_bound_port()
    if port <= 0:
        log("cannot listen on %s:%s" % (args.address, args.port))
        return 3

    sys.stdout.write("READY port=%d\n" % port)
    sys.stdout.flush()
    log("serving %s at rtsp://%s:%d%s%s" % (args.file, args.address, port, args.mount,
                                            " (%s auth required)" % methods if args.user else ""))
    loop.run()
    return 0


if __name__ == "__main__":
    code = 1
    try:
        code = main()
    except SystemExit as e:  # argparse errors
        code = e.code if isinstance(e.code, int) else 2
    except BaseException as e:  # noqa: BLE001
        log("fatal: %r" % (e,))
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        # Skip interpreter teardown: GStreamer streaming threads may still be
        # running and there is nothing to flush to disk.
        os._exit(code)

import { configSchema, type AgentConfig } from '../../agent/config/schema.js';
import type { CameraState } from '../../agent/ingest/camera-supervisor.js';
import type { Frame } from '../../agent/ingest/frame.js';
import type { FrameGeometry } from '../../agent/ingest/frame-geometry.js';
import { IngestService } from '../../agent/ingest/ingest-service.js';
import { captureLogger } from './capture-log.js';
import { waitFor } from './wait.js';

export const SMALL_GEOMETRY: FrameGeometry = {
  width: 160,
  height: 160,
  pixelFormat: 'bgr24',
  resize: { mode: 'letterbox', padValue: 114, anchor: 'top-left' },
};

export interface Harness {
  ingest: IngestService;
  /** Arrival times (ms) of every frame taken from each camera's slot. */
  arrivals: Map<string, number[]>;
  /** The source picture size the latest frame of each camera carried. */
  sourceSizes: Map<string, [number, number]>;
  logLines: () => string[];
  camera(id: string): CameraState;
  /** Resolves when the camera has delivered `count` more frames; rejects after timeoutMs. */
  waitFrames(id: string, count: number, timeoutMs: number): Promise<number>;
  waitState(id: string, predicate: (state: CameraState) => boolean, timeoutMs: number): Promise<CameraState>;
  stop(): Promise<void>;
}

/** The real ingest service (real ffmpeg) with a consumer that takes every frame as it comes. */
export async function startIngest(
  raw: Record<string, unknown>,
  geometry: FrameGeometry = SMALL_GEOMETRY,
  options: { consumerDelayMs?: number; onFrame?: (cameraId: string, frame: Frame) => void } = {},
): Promise<Harness> {
  const config: AgentConfig = configSchema.parse(raw);
  const { log, lines } = captureLogger();
  const arrivals = new Map<string, number[]>();
  const sourceSizes = new Map<string, [number, number]>();
  let ingest: IngestService;
  const attach = (): void => {
    for (const slot of ingest.slots) {
      if (!arrivals.has(slot.cameraId)) arrivals.set(slot.cameraId, []);
      const consume = (): void => {
        const frame = slot.take();
        if (!frame) return;
        arrivals.get(slot.cameraId)!.push(Date.now());
        sourceSizes.set(slot.cameraId, [frame.sourceWidth, frame.sourceHeight]);
        options.onFrame?.(slot.cameraId, frame);
        slot.release(frame);
      };
      // A slow consumer stands in for a model that takes consumerDelayMs per frame.
      let scheduled = false;
      slot.setReadyListener(
        options.consumerDelayMs === undefined
          ? consume
          : () => {
              if (scheduled) return;
              scheduled = true;
              setTimeout(() => {
                scheduled = false;
                consume();
              }, options.consumerDelayMs);
            },
      );
    }
  };
  ingest = new IngestService({ config, geometry, log, onSlotsChanged: attach });
  await ingest.start(new AbortController().signal);
  attach();
  const camera = (id: string): CameraState => {
    const found = ingest.cameras().find((state) => state.id === id);
    if (!found) throw new Error(`no camera ${id}`);
    return found;
  };
  const poll = <T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> =>
    waitFor(check, timeoutMs, () => `${what}; states: ${JSON.stringify(ingest.cameras())}`, 50);
  return {
    ingest,
    arrivals,
    sourceSizes,
    logLines: lines,
    camera,
    waitFrames: (id, count, timeoutMs) => {
      const target = (arrivals.get(id)?.length ?? 0) + count;
      const started = Date.now();
      return poll(() => ((arrivals.get(id)?.length ?? 0) >= target ? Date.now() - started : undefined), timeoutMs, `${count} frames from ${id}`);
    },
    waitState: (id, predicate, timeoutMs) =>
      poll(
        () => {
          const state = camera(id);
          return predicate(state) ? state : undefined;
        },
        timeoutMs,
        `a state of ${id}`,
      ),
    stop: () => ingest.stop(),
  };
}

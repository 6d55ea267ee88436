import { z } from 'zod';

/**
 * Counting (issue #18, docs/counting.md): the lines of each camera (its `lines` key) and the
 * `counting` section (interval, tracker). Part of the one schema in schema.ts.
 */

const point = z
  .tuple([z.number().min(0).max(1), z.number().min(0).max(1)])
  .describe('[x, y] as fractions of the picture width and height (0..1, origin top left): the same for any resolution.');

const directionLabel = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9 _.-]{0,47}$/, { error: 'must be 1-48 letters, digits, spaces, ".", "_" or "-", starting with a letter or digit' });

export const countingLineSchema = z
  .strictObject({
    id: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,47}$/, { error: 'lower-case letters, digits and "-", at most 48 (e.g. "northbound-lane-1")' })
      .describe("The line's id, unique per camera: in counts, topics and the CLI."),
    from: point.describe('Where the line starts, [x, y] in 0..1.'),
    to: point.describe('Where it ends. Directions are named as seen standing at `from` looking at `to`.'),
    directions: z
      .strictObject({
        leftToRight: directionLabel
          .optional()
          .describe('Label of vehicles crossing from the line\'s left to its right (e.g. "northbound"); unset: not counted.'),
        rightToLeft: directionLabel.optional().describe('Label of vehicles crossing from its right to its left; unset: not counted.'),
      })
      .describe('A label per counted direction; `cctv-agent camera snapshot ID --lines out.jpg` draws an arrow for each.'),
  })
  .superRefine((line, ctx) => {
    const length = Math.hypot(line.to[0] - line.from[0], line.to[1] - line.from[1]);
    if (length < 0.01)
      ctx.addIssue({ code: 'custom', path: ['to'], message: 'is (almost) the same point as from: give the two ends of the line, at least 0.01 apart' });
    const { leftToRight, rightToLeft } = line.directions;
    if (leftToRight === undefined && rightToLeft === undefined) {
      ctx.addIssue({ code: 'custom', path: ['directions'], message: 'counts nothing: give a label for leftToRight, rightToLeft or both' });
    } else if (leftToRight !== undefined && leftToRight === rightToLeft) {
      ctx.addIssue({
        code: 'custom',
        path: ['directions', 'rightToLeft'],
        message: `repeats leftToRight's label "${leftToRight}": the two directions need different labels`,
      });
    }
  });

export const countingLinesSchema = z
  .array(countingLineSchema)
  .max(16)
  .default([])
  .superRefine((lines, ctx) => {
    const seen = new Set<string>();
    lines.forEach((line, index) => {
      if (seen.has(line.id))
        ctx.addIssue({ code: 'custom', path: [index, 'id'], message: `duplicate line id "${line.id}" on this camera: give each line its own id` });
      seen.add(line.id);
    });
  })
  .describe('Counting lines of this camera (docs/counting.md); none: the camera is tracked but not counted.');

export const trackerSchema = z
  .strictObject({
    highScore: z
      .number()
      .min(0)
      .max(1)
      .default(0.5)
      .describe('Detections at or above this are associated first and may start tracks; the others only extend tracks.'),
    newTrackScore: z.number().min(0).max(1).default(0.6).describe('A track starts only from a detection at or above this.'),
    expand: z
      .number()
      .min(0)
      .max(3)
      .default(0.5)
      .describe('Boxes are enlarged by this fraction of their size before IoU: at 5 frames/s vehicles move far between frames (docs/counting.md).'),
    maxLostSeconds: z.number().positive().max(30).default(1).describe('A track not seen for this long dies.'),
    confirmHits: z.number().int().min(1).max(10).default(2).describe('Matches before a track is confirmed (gets a trackId and can be counted).'),
  })
  .superRefine((tracker, ctx) => {
    if (tracker.newTrackScore < tracker.highScore) {
      ctx.addIssue({
        code: 'custom',
        path: ['newTrackScore'],
        message: `must be at least highScore (${tracker.highScore}): a track starts only from a high-score detection`,
      });
    }
  })
  .prefault({});

export const countingSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe("Track vehicles (trackId in results) and count them on the cameras' lines."),
    intervalSeconds: z
      .number()
      .int()
      .min(10)
      .max(86_400)
      .refine((seconds) => 86_400 % seconds === 0, { error: 'must divide a day (e.g. 60, 300, 900, 3600) so intervals line up across devices' })
      .default(60)
      .describe('Length of a counting interval; counts per line, direction and type are stored and published per interval.'),
    graceSeconds: z
      .number()
      .min(0)
      .max(600)
      .default(5)
      .describe('An interval is closed (stored and published) this long after its end, for frames still in the pipeline.'),
    tracker: trackerSchema,
  })
  .prefault({});

export type CountingLine = z.output<typeof countingLineSchema>;
export type CountingConfig = z.output<typeof countingSchema>;
export type TrackerConfig = z.output<typeof trackerSchema>;

import type { CountingLine } from '../config/counting-schema.js';

const escapeXml = (text: string): string => text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** One arrow of a counted direction: where it starts and ends, in pixels, and its label. */
export interface DirectionArrow {
  lineId: string;
  label: string;
  from: [number, number];
  to: [number, number];
}

/**
 * The arrows of a line's counted directions, in pixels of a `width` x `height` picture: each
 * starts on the line and points the way the counted vehicles go. Seen standing at `from` facing
 * `to` (y down), the right-hand side is the direction (-dy, dx); leftToRight vehicles move
 * toward it. The two arrows sit at 40 % and 60 % along the line so both stay readable.
 */
export function directionArrows(line: CountingLine, width: number, height: number): DirectionArrow[] {
  const ax = line.from[0] * width;
  const ay = line.from[1] * height;
  const bx = line.to[0] * width;
  const by = line.to[1] * height;
  const length = Math.hypot(bx - ax, by - ay);
  const nx = -(by - ay) / length;
  const ny = (bx - ax) / length;
  const size = Math.max(16, Math.min(width, height) * 0.09);
  const arrows: DirectionArrow[] = [];
  const add = (label: string | undefined, at: number, sign: number): void => {
    if (label === undefined) return;
    const sx = ax + (bx - ax) * at;
    const sy = ay + (by - ay) * at;
    arrows.push({ lineId: line.id, label, from: [sx, sy], to: [sx + sign * nx * size, sy + sign * ny * size] });
  };
  add(line.directions.leftToRight, 0.4, 1);
  add(line.directions.rightToLeft, 0.6, -1);
  return arrows;
}

/** An SVG the size of the picture with each line, its id, and an arrow and label per counted direction. */
export function linesOverlaySvg(lines: readonly CountingLine[], width: number, height: number): string {
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 160));
  const font = Math.max(11, Math.round(Math.min(width, height) / 28));
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    '<defs><marker id="head" viewBox="0 0 10 10" refX="8" refY="5" markerWidth="4" markerHeight="4" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#ffd400"/></marker></defs>',
    `<g font-family="DejaVu Sans, sans-serif" font-size="${font}" font-weight="bold" paint-order="stroke" stroke-linejoin="round">`,
  ];
  for (const line of lines) {
    const [ax, ay] = [line.from[0] * width, line.from[1] * height];
    const [bx, by] = [line.to[0] * width, line.to[1] * height];
    parts.push(`<line x1="${ax.toFixed(1)}" y1="${ay.toFixed(1)}" x2="${bx.toFixed(1)}" y2="${by.toFixed(1)}" stroke="#ff2020" stroke-width="${stroke}"/>`);
    parts.push(
      `<text x="${(ax + 4).toFixed(1)}" y="${(ay - 6).toFixed(1)}" fill="#ff2020" stroke="#000" stroke-width="${Math.max(2, stroke)}">${escapeXml(line.id)}</text>`,
    );
    for (const arrow of directionArrows(line, width, height)) {
      parts.push(
        `<line x1="${arrow.from[0].toFixed(1)}" y1="${arrow.from[1].toFixed(1)}" x2="${arrow.to[0].toFixed(1)}" y2="${arrow.to[1].toFixed(1)}" stroke="#ffd400" stroke-width="${stroke + 1}" marker-end="url(#head)"/>`,
      );
      // Beside the arrow's head, on the side it points to, unless the label would leave the picture there.
      const textWidth = arrow.label.length * font * 0.62;
      const leftward = arrow.to[0] < arrow.from[0];
      const anchor = leftward ? (arrow.to[0] - textWidth >= 0 ? 'end' : 'start') : arrow.to[0] + textWidth <= width ? 'start' : 'end';
      parts.push(
        `<text x="${(arrow.to[0] + (anchor === 'end' ? -4 : 4)).toFixed(1)}" y="${(arrow.to[1] + font / 3).toFixed(1)}" text-anchor="${anchor}" fill="#ffd400" stroke="#000" stroke-width="${Math.max(2, stroke)}">${escapeXml(arrow.label)}</text>`,
      );
    }
  }
  parts.push('</g></svg>');
  return parts.join('\n');
}

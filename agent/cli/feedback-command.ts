import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import { AgentError, errorLines, errorMessage } from '../errors.js';
import { ExitCode } from '../lifecycle/exit-codes.js';
import { type FeedbackItem, type FeedbackResult, feedbackItemSchema } from '../monitor/feedback-schema.js';
import type { CliIo } from './io.js';
import { commandTarget, sendCommand } from './mqtt-request.js';

export const FEEDBACK_USAGE = `usage:
  cctv-agent feedback send FILE [--device ID | --fleet] [--broker URL] [--config FILE] [--json]

Sends a reviewer's verdicts to an agent's feedback command, in batches of
monitor.maxFeedbackItems, and prints what was stored. FILE holds the items (docs/monitoring.md):
  - JSON: an array of items, or {"items": [...]}
  - JSON lines: one item per line
  - CSV (.csv): a header line with columns id,resultId,detection,verdict,trueType,type,box
    (box as x;y;w;h), one item per line
The broker and credentials come from the config (mqtt.url, else the embedded broker); --device
names another agent than the config's deviceId; --fleet sends to every device.
`;

function invalid(where: string, problem: string): AgentError {
  return new AgentError('FEEDBACK_INVALID', `${where}: ${problem}`);
}

function parseCsv(text: string, file: string): unknown[] {
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  const header = (lines.shift() ?? '').split(',').map((cell) => cell.trim());
  if (!header.includes('id') || !header.includes('verdict'))
    throw invalid(`${file}:1`, 'the header must name the columns (id,resultId,detection,verdict,trueType,type,box)');
  return lines.map((line) => {
    const cells = line.split(',').map((cell) => cell.trim());
    const item: Record<string, unknown> = {};
    header.forEach((column, index) => {
      const cell = cells[index];
      if (cell === undefined || cell === '') return;
      if (column === 'detection') item[column] = Number(cell);
      else if (column === 'box') item[column] = cell.split(';').map(Number);
      else item[column] = cell;
    });
    return item;
  });
}

/** The items of a feedback file, each checked against the feedback schema (line numbers in errors). */
export function readFeedbackFile(file: string): FeedbackItem[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw invalid(file, `cannot be read: ${errorMessage(error)}`);
  }
  let raw: unknown[];
  let lineOf = (index: number): string => `${file} item ${index + 1}`;
  if (file.toLowerCase().endsWith('.csv')) {
    raw = parseCsv(text, file);
    lineOf = (index) => `${file}:${index + 2}`;
  } else {
    const trimmed = text.trim();
    try {
      const whole = trimmed.startsWith('[') || (trimmed.startsWith('{') && !trimmed.includes('\n')) ? (JSON.parse(trimmed) as unknown) : undefined;
      if (Array.isArray(whole)) raw = whole;
      else if (whole !== undefined && typeof whole === 'object' && whole !== null && Array.isArray((whole as { items?: unknown }).items))
        raw = (whole as { items: unknown[] }).items;
      else if (whole !== undefined && typeof whole === 'object' && whole !== null && 'verdict' in whole) raw = [whole];
      else {
        raw = trimmed
          .split(/\r?\n/)
          .filter((line) => line.trim() !== '')
          .map((line) => JSON.parse(line) as unknown);
        lineOf = (index) => `${file}:${index + 1}`;
      }
    } catch (error) {
      throw invalid(file, `is not JSON, JSON lines or CSV: ${errorMessage(error)}`);
    }
  }
  return raw.map((value, index) => {
    const parsed = feedbackItemSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw invalid(lineOf(index), `${issue.path.join('.') || '(item)'}: ${issue.message}`);
    }
    return parsed.data;
  });
}

/** `cctv-agent feedback send FILE`. */
export async function feedbackCommand(argv: string[], io: CliIo): Promise<number> {
  try {
    const [action, ...rest] = argv;
    if (action === undefined || action === '--help' || action === '-h' || action === 'help' || rest.includes('--help')) {
      io.out.write(FEEDBACK_USAGE);
      return action === undefined ? ExitCode.CONFIG : ExitCode.OK;
    }
    if (action !== 'send') throw new AgentError('USAGE', `unknown feedback command "${action}" (expected send)\n${FEEDBACK_USAGE}`);
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: {
        device: { type: 'string' },
        fleet: { type: 'boolean' },
        broker: { type: 'string' },
        config: { type: 'string', short: 'c' },
        json: { type: 'boolean' },
      },
    });
    if (positionals.length !== 1) throw new AgentError('USAGE', `feedback send takes one FILE\n${FEEDBACK_USAGE}`);
    if (values.device !== undefined && values.fleet) throw new AgentError('USAGE', 'give --device or --fleet, not both');
    const items = readFeedbackFile(positionals[0]!);
    const { config } = loadConfig({ ...(values.config ? { file: values.config } : {}), env: io.env });
    const target = commandTarget(config, { broker: values.broker, device: values.device, fleet: values.fleet === true });
    const batch = config.monitor.maxFeedbackItems;
    const totals = { stored: 0, duplicates: 0, replaced: 0, notMine: 0 };
    for (let start = 0; start < items.length; start += batch) {
      const replies = await sendCommand(target, 'feedback', { items: items.slice(start, start + batch) }, values.fleet ? { collectMs: 3000 } : {});
      for (const reply of replies) {
        if (!reply.ok)
          throw new AgentError(reply.code ?? 'COMMAND_FAILED', `items ${start + 1}-${Math.min(items.length, start + batch)}: ${reply.message ?? 'refused'}`);
        const result = reply.result as FeedbackResult;
        totals.stored += result.stored;
        totals.duplicates += result.duplicates;
        totals.replaced += result.replaced;
        totals.notMine += result.notMine;
      }
      if (!values.json) io.err.write(`feedback: ${Math.min(items.length, start + batch)} of ${items.length} items sent\n`);
    }
    io.out.write(
      values.json
        ? `${JSON.stringify({ items: items.length, ...totals })}\n`
        : `feedback: ${items.length} items: ${totals.stored} stored, ${totals.replaced} replaced, ${totals.duplicates} already there${values.fleet ? `, ${totals.notMine} not on a device that answered` : ''}\n`,
    );
    return ExitCode.OK;
  } catch (error) {
    for (const line of errorLines(error)) io.err.write(`${line}\n`);
    if (error instanceof TypeError && 'code' in error) return ExitCode.CONFIG;
    return error instanceof AgentError && (error.code === 'USAGE' || error.code.startsWith('CONFIG_')) ? ExitCode.CONFIG : ExitCode.FATAL;
  }
}

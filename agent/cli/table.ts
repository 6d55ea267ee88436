export interface TableOptions {
  /** Put before every line (default two spaces). */
  indent?: string;
  /** Columns whose cells are right-aligned (numbers). */
  rightAligned?: ReadonlySet<number>;
}

/**
 * The CLI's one text table: columns as wide as their widest cell, two spaces apart, trailing
 * spaces trimmed (so a long last column, a licence or an error, is never padded). One string per line.
 */
export function tableLines(rows: string[][], options: TableOptions = {}): string[] {
  if (rows.length === 0) return [];
  const indent = options.indent ?? '  ';
  const right = options.rightAligned ?? new Set<number>();
  const columns = Math.max(...rows.map((row) => row.length));
  const widths = Array.from({ length: columns }, (_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length)));
  return rows.map(
    (row) =>
      `${indent}${row
        .map((cell, column) => (right.has(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
        .join('  ')
        .trimEnd()}`,
  );
}

/** tableLines joined, with a final newline. */
export function formatTable(rows: string[][], options: TableOptions = {}): string {
  return `${tableLines(rows, options).join('\n')}\n`;
}

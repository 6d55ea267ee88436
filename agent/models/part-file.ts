import fs from 'node:fs';

/**
 * A bundle being received in chunks: a `.part` file of the announced size, written at each
 * chunk's offset, and the bitmap of chunks held. `flush()` makes the bytes durable before the
 * bitmap is persisted by the caller, so after a crash a chunk is either on disk or sent again.
 */
export class PartFile {
  private fd: number | undefined;
  readonly bitmap: Buffer;
  private count = 0;

  constructor(
    readonly file: string,
    readonly size: number,
    readonly chunkSize: number,
    readonly chunks: number,
    bitmap?: Buffer,
  ) {
    this.bitmap = bitmap && bitmap.length === Math.ceil(chunks / 8) ? Buffer.from(bitmap) : Buffer.alloc(Math.ceil(chunks / 8));
    for (let i = 0; i < chunks; i++) if (this.has(i)) this.count++;
    const exists = fs.existsSync(file);
    this.fd = fs.openSync(file, exists ? 'r+' : 'w+');
    if (!exists || fs.fstatSync(this.fd).size !== size) fs.ftruncateSync(this.fd, size);
  }

  has(index: number): boolean {
    return (this.bitmap[index >> 3]! & (1 << (index & 7))) !== 0;
  }

  get received(): number {
    return this.count;
  }

  get bytes(): number {
    if (this.count === 0) return 0;
    const last = this.chunks - 1;
    return this.count * this.chunkSize - (this.has(last) ? this.chunkSize - this.lengthOf(last) : 0);
  }

  get complete(): boolean {
    return this.count === this.chunks;
  }

  lengthOf(index: number): number {
    return index === this.chunks - 1 ? this.size - index * this.chunkSize : this.chunkSize;
  }

  missing(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.chunks; i++) if (!this.has(i)) out.push(i);
    return out;
  }

  /** Writes a chunk whose checksum already held; a duplicate is not written twice. */
  write(index: number, data: Buffer): 'new' | 'duplicate' {
    if (this.has(index)) return 'duplicate';
    if (this.fd === undefined) throw new Error('part file closed');
    fs.writeSync(this.fd, data, 0, data.length, index * this.chunkSize);
    this.bitmap[index >> 3] = this.bitmap[index >> 3]! | (1 << (index & 7));
    this.count++;
    return 'new';
  }

  flush(): void {
    if (this.fd !== undefined) fs.fdatasyncSync(this.fd);
  }

  close(): void {
    if (this.fd === undefined) return;
    fs.fdatasyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

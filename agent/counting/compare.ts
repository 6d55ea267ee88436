import { type VehicleType, vehicleTypes } from '../common/vehicle-types.js';
import type { CountErrorPayload, ReferenceCountsArgs } from './counts-schema.js';

type Comparison = CountErrorPayload['total'];

const relative = (agent: number, reference: number): number | null =>
  reference === 0 ? null : Math.round(((agent - reference) / reference) * 10_000) / 10_000;

/**
 * The agent's counts against a reference, per type and in total. Types in `merge` are counted as
 * their target on both sides first (a model without a van class against a counter with one).
 * Every type the reference gives is compared, and every type the agent counted that it does not
 * give (a reference silent on a type the agent saw is a disagreement, not nothing).
 */
export function compareCounts(
  reference: ReferenceCountsArgs['counts'],
  agent: ReadonlyArray<{ vehicleType: string; count: number }>,
  merge: ReferenceCountsArgs['merge'] = {},
): { byType: Array<Comparison & { type: VehicleType }>; total: Comparison } {
  const as = (type: VehicleType): VehicleType => merge[type] ?? type;
  const referenceBy = new Map<VehicleType, number>();
  const agentBy = new Map<VehicleType, number>();
  for (const [type, count] of Object.entries(reference) as Array<[VehicleType, number]>) referenceBy.set(as(type), (referenceBy.get(as(type)) ?? 0) + count);
  for (const row of agent) {
    const type = (vehicleTypes as readonly string[]).includes(row.vehicleType) ? as(row.vehicleType as VehicleType) : 'other';
    agentBy.set(type, (agentBy.get(type) ?? 0) + row.count);
  }
  const byType = vehicleTypes
    .filter((type) => referenceBy.has(type) || (agentBy.get(type) ?? 0) > 0)
    .map((type) => {
      const r = referenceBy.get(type) ?? 0;
      const a = agentBy.get(type) ?? 0;
      return { type, reference: r, agent: a, error: relative(a, r) };
    });
  const referenceTotal = byType.reduce((sum, row) => sum + row.reference, 0);
  const agentTotal = byType.reduce((sum, row) => sum + row.agent, 0);
  return { byType, total: { reference: referenceTotal, agent: agentTotal, error: relative(agentTotal, referenceTotal) } };
}

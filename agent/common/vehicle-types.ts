/**
 * The vehicle types the whole product speaks: model manifests map their labels to these, results
 * and counts carry them, feedback names them. A leaf module: anything may import it.
 */
export const vehicleTypes = ['car', 'van', 'truck', 'bus', 'motorcycle', 'bicycle', 'other'] as const;
export type VehicleType = (typeof vehicleTypes)[number];

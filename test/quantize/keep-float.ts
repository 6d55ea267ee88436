/** The layers kept float in tests and the bench: the same lists the asset fetch's derivation uses. */
export { YOLOX_NANO_KEEP_FLOAT as KEEP_FLOAT, YOLOX_NANO_KEEP_FLOAT_SWEPT as KEEP_FLOAT_SWEPT } from '../../agent/quantize/derive-default.js';

/** The layers kept float in tests and the bench: the same list the asset fetch's derivation uses. */
export { YOLOX_NANO_KEEP_FLOAT as KEEP_FLOAT } from '../../agent/quantize/derive-default.js';

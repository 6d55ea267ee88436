/**
 * YOLOX-nano's layers kept float by default in tests and the bench: the stem (the Focus conv and
 * the first depthwise block) and the 9 prediction convs, the layers the reference model keeps
 * float and that quantize worst.
 */
export const KEEP_FLOAT = ['Conv_41', 'Conv_44', 'Conv_47', 'Conv_314', 'Conv_327', 'Conv_328', 'Conv_347', 'Conv_360', 'Conv_361', 'Conv_380', 'Conv_393', 'Conv_394'];

// The config module's public API: pure logic shared by the server, the CLI (`check`,
// `init`) and the extension's diagnostics. No `vscode` import, anywhere below here.
export type * from './types';
export { CONFIG_FILE_NAME, loadConfig, parseConfigText, type ConfigOverrides, type LoadOptions } from './load';
export { formatDiagnostic } from './format';
export { detectApp, detectFolder, DETECTION_SUMMARY, type AppCandidate, type FolderDetection, type Framework, type StaticMount } from './detect';
export { DETECTED_POOL, detectedRawConfig, starterConfigText } from './starter';
export { parseDuration, parseRate, parseSize, type Parsed, type Rate } from './units';
export { parseListen } from './listen';
export { parseAppTarget, type AppTarget } from './appTarget';
export { CONFIG_SCHEMA } from './schema';

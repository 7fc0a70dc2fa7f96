// Every default, as a raw config value read from schema.json (the one place defaults are
// written). The resolver parses these exactly like values the user wrote, so "30s" in the
// schema means what "30s" in a config means. Read once at load: a missing default throws.
import { schemaDefault } from './schema';

export const DEFAULTS = {
  listen: schemaDefault('/properties/listen'),
  trustedProxies: schemaDefault('/properties/trustedProxies') as string[],
  pythonPool: {
    interface: schemaDefault('/definitions/pythonPool/properties/interface'),
    workers: schemaDefault('/definitions/pythonPool/properties/workers'),
    threads: schemaDefault('/definitions/pythonPool/properties/threads'),
    maxRequests: schemaDefault('/definitions/pythonPool/properties/maxRequests'),
    reload: schemaDefault('/definitions/pythonPool/properties/reload'),
  },
  poolTimeout: schemaDefault('/definitions/poolTimeout'),
  route: {
    compress: schemaDefault('/definitions/route/properties/compress'),
    balance: schemaDefault('/definitions/route/properties/balance'),
    maxFails: schemaDefault('/definitions/route/properties/maxFails'),
    failTimeout: schemaDefault('/definitions/route/properties/failTimeout'),
  },
  compression: {
    types: schemaDefault('/definitions/compression/properties/types'),
    minSize: schemaDefault('/definitions/compression/properties/minSize'),
    gzipLevel: schemaDefault('/definitions/compression/properties/gzipLevel'),
    brotliQuality: schemaDefault('/definitions/compression/properties/brotliQuality'),
  },
  env: schemaDefault('/definitions/env'),
  limits: {
    maxBodySize: schemaDefault('/properties/limits/properties/maxBodySize'),
    maxHeaderSize: schemaDefault('/properties/limits/properties/maxHeaderSize'),
    maxHeaderLineSize: schemaDefault('/properties/limits/properties/maxHeaderLineSize'),
    headerTimeout: schemaDefault('/properties/limits/properties/headerTimeout'),
    queueSize: schemaDefault('/properties/limits/properties/queueSize'),
    maxHeaderCount: schemaDefault('/properties/limits/properties/maxHeaderCount'),
    bufferSize: schemaDefault('/properties/limits/properties/bufferSize'),
    maxTempFileSize: schemaDefault('/properties/limits/properties/maxTempFileSize'),
    maxWebSocketMessageSize: schemaDefault('/properties/limits/properties/maxWebSocketMessageSize'),
  },
  dev: {
    liveReload: schemaDefault('/properties/dev/properties/liveReload'),
    watch: schemaDefault('/properties/dev/properties/watch'),
  },
} as const;

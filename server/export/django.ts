// A detected Django project's static files in production: ServeStack collects them into a
// folder of its own while it serves (server/devloop/djangoStatic.ts); production runs
// `collectstatic` into the project's STATIC_ROOT and NGINX aliases STATIC_URL to it.
// The export swaps ServeStack's folder for that STATIC_ROOT and says what to run.
import path from 'node:path';
import type { ServeConfig, StaticRoute } from '../config/types';
import { djangoStaticRoot } from '../devloop/paths';

/** Where production collects to: Django's own documentation's name, beside manage.py. */
export const DJANGO_STATIC_ROOT_NAME = 'staticfiles';

export interface DjangoExport {
  config: ServeConfig;
  /** The route served from the collected files, when the config has one. */
  route?: StaticRoute;
  staticRoot?: string;
}

export function djangoForExport(config: ServeConfig): DjangoExport {
  const owned = djangoStaticRoot(config.dir);
  const route = config.routes.find((r): r is StaticRoute => r.kind === 'static' && r.root === owned);
  if (!route) return { config };
  const staticRoot = path.join(config.dir, DJANGO_STATIC_ROOT_NAME);
  const routes = config.routes.map((r) => (r === route ? { ...route, root: staticRoot } : r));
  return { config: { ...config, routes }, route: { ...route, root: staticRoot }, staticRoot };
}

/** The README section: collectstatic on every release, before NGINX serves the alias. */
export function djangoReadme(django: DjangoExport): string {
  if (!django.route || !django.staticRoot) return '';
  return `
## Django's static files

\`servestack serve\` collected them for you. In production, \`location ${django.route.path}\` in
\`nginx.conf\` is an \`alias\` of ${django.staticRoot}/: set \`STATIC_ROOT = BASE_DIR / "${DJANGO_STATIC_ROOT_NAME}"\`
in the settings and, on every release, run

\`\`\`sh
cd ${path.dirname(django.staticRoot)} && python manage.py collectstatic --noinput
\`\`\`
`;
}

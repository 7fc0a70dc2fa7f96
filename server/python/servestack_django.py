"""ServeStack's Django helper: what `runserver` does for static files, done the production
way. Run with the project's interpreter in the project's folder, it loads the app module
the pool serves (which sets DJANGO_SETTINGS_MODULE and sets Django up, as a worker would),
points STATIC_ROOT at a folder ServeStack owns, runs `collectstatic --noinput` there
(Django's own finders and storage, so every app's files and STATICFILES_DIRS are found,
and an unchanged file is skipped), and reports, as one JSON line after a marker, the
STATIC_URL, the folders the finders read (to watch them) and the template folders (to
reload on a template save). Only the standard library here; Django is the project's.
"""
import argparse
import importlib
import json
import os
import sys
import traceback

MARKER = "SERVESTACK_DJANGO "


def report(payload):
    sys.stdout.write(MARKER + json.dumps(payload) + "\n")
    sys.stdout.flush()


def static_sources():
    from django.contrib.staticfiles.finders import get_finders

    sources = []
    for finder in get_finders():
        for prefix, root in getattr(finder, "locations", []) or []:
            sources.append({"prefix": prefix or "", "dir": os.path.abspath(str(root))})
        for storage in (getattr(finder, "storages", {}) or {}).values():
            location = getattr(storage, "location", None)
            if location:
                sources.append({"prefix": getattr(storage, "prefix", "") or "", "dir": os.path.abspath(str(location))})
    return sources


def template_dirs():
    try:
        from django.template import engines

        found = []
        for engine in engines.all():
            for folder in getattr(engine, "template_dirs", ()) or ():
                found.append(os.path.abspath(str(folder)))
        return found
    except Exception:  # a template engine that cannot be built is the app's error, shown when it renders
        return []


def copy_changed_files_within_the_second():
    """collectstatic skips a file whose copy is not older than its source, compared to the
    second: a save within a second of the last collect (an editor's quick fix) was never
    collected. A copy whose bytes differ from its source is always replaced."""
    from django.contrib.staticfiles.management.commands import collectstatic

    skip_by_time = collectstatic.Command.delete_file

    def delete_file(self, path, prefixed_path, source_storage):
        try:
            if self.storage.exists(prefixed_path):
                with source_storage.open(path) as source, self.storage.open(prefixed_path) as copy:
                    if source.read() != copy.read():
                        self.storage.delete(prefixed_path)
                        return True
        except (OSError, NotImplementedError):
            pass
        return skip_by_time(self, path, prefixed_path, source_storage)

    collectstatic.Command.delete_file = delete_file


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--app", required=True)
    parser.add_argument("--cwd", required=True)
    parser.add_argument("--static-root", required=True)
    parser.add_argument("--collect", action="store_true")
    args = parser.parse_args()
    os.chdir(args.cwd)
    sys.path.insert(0, args.cwd)
    try:
        importlib.import_module(args.app.split(":", 1)[0])
        import django
        from django.apps import apps
        from django.conf import settings

        if not apps.ready:
            django.setup()
        if not apps.is_installed("django.contrib.staticfiles"):
            report({"staticUrl": None, "sources": [], "templateDirs": template_dirs(), "collected": False})
            return 0
        # Before anything asks the storage: it reads STATIC_ROOT once, when first used.
        settings.STATIC_ROOT = args.static_root
        collected = False
        if args.collect:
            from django.core.management import call_command

            copy_changed_files_within_the_second()
            call_command("collectstatic", interactive=False, verbosity=0)
            collected = True
        report({"staticUrl": settings.STATIC_URL, "sources": static_sources(), "templateDirs": template_dirs(), "collected": collected})
        return 0
    except Exception as exc:  # the reason goes back to the server, which logs it and keeps serving
        report({"error": "%s: %s" % (type(exc).__name__, exc), "traceback": traceback.format_exc()})
        return 1


if __name__ == "__main__":
    sys.exit(main())

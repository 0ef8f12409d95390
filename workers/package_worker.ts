/**
 * Where a packaged plugin's worker starts: Gini's bootstrap (which locks the worker down as it
 * loads), then the package's module, imported from the `blob:` URL the kernel sends in `init`.
 * The import lives here, not in the bootstrap, because every package carries a copy of the
 * bootstrap through the SDK, and a package may hold no dynamic import.
 *
 * @module
 */
import { setModuleLoader } from "./plugin_worker.ts";

setModuleLoader((url) => import(url));

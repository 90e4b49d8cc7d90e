"""movierec: a movie recommendation service for a streaming site, and a simulator of the site."""

from movierec.logformat.numba_cache import use_keyed_cache_dir

__version__ = "0.1.0"

# Here, before any movierec module imports numba (which reads its cache directory once, on
# import): the parser kernels' cache must be keyed by all of their sources.
use_keyed_cache_dir()

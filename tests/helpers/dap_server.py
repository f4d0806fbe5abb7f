"""A real OPeNDAP (DAP2) server for the tests: pydap's DapServer WSGI app on 127.0.0.1.

    python dap_server.py FOLDER REQUEST_LOG

serves the NetCDF files of FOLDER (``<url>/<name>.das``, ``.dds``, ``.dods?<constraint>``) on a free
port, prints ``http://127.0.0.1:<port>`` on its first line of stdout and appends each request's path
and query to REQUEST_LOG.

pydap 3.5.9's NetCDF handler reshapes every read to the variable's full shape (pydap issues #130,
#184, #217: a hyperslab, or a block of a large variable, fails with "cannot reshape array"); the
patch below keeps the shape of what was read, which is what a DAP server must send.
"""

from __future__ import annotations

import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

import numpy as np
from pydap.handlers import netcdf_handler
from pydap.wsgi.app import DapServer


def _read(self, key):
    with netcdf_handler.netcdf_file(self.filepath, "r") as source:
        source.set_auto_scale(False)
        data = np.asarray(source[self.path][key]).astype(self.dtype)
    return data.reshape(self._reshape) if data.size == np.prod(self._reshape) else data


netcdf_handler.LazyVariable.__getitem__ = _read


def main(folder: str, request_log: str) -> None:
    app = DapServer(folder)

    def logged(environ, start_response):
        with open(request_log, "a") as handle:
            handle.write(f"{environ.get('PATH_INFO', '')}?{environ.get('QUERY_STRING', '')}\n")
        return app(environ, start_response)

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server("127.0.0.1", 0, logged, handler_class=Quiet)
    print(f"http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

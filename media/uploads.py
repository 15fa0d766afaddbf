"""Streaming upload handling: the multipart `file` goes to a temporary file on disk, counted and
hashed chunk by chunk, never held whole in memory; past the size limit it is dropped at once."""

from __future__ import annotations

import hashlib

from django.core.files.uploadedfile import TemporaryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopFutureHandlers, StopUpload

UPLOAD_FIELD = "file"


class MediaUploadHandler(FileUploadHandler):
    """Keeps only the `file` part, on disk, with its sha256; other file parts are ignored."""

    chunk_size = 256 * 1024

    def __init__(self, request=None, *, max_bytes: int):
        super().__init__(request)
        self.max_bytes = max_bytes
        self.too_large = False
        self.upload: TemporaryUploadedFile | None = None
        self._receiving = False
        self._sha256 = hashlib.sha256()
        self._size = 0

    def new_file(self, field_name, file_name, content_type, content_length, *args, **kwargs):
        super().new_file(field_name, file_name, content_type, content_length, *args, **kwargs)
        self._receiving = field_name == UPLOAD_FIELD and self.upload is None
        if self._receiving:
            # Name and type as the client sent them are kept only for logs: never trusted.
            self.upload = TemporaryUploadedFile(
                (file_name or "upload")[-100:], "application/octet-stream", 0, None
            )
        raise StopFutureHandlers()

    def receive_data_chunk(self, raw_data, start):
        if not self._receiving:
            return None
        self._size += len(raw_data)
        if self._size > self.max_bytes:
            self.too_large = True
            self.upload.close()  # deletes the temporary file
            self.upload = None
            raise StopUpload(connection_reset=False)  # the rest of the body is discarded
        self._sha256.update(raw_data)
        self.upload.write(raw_data)
        return None

    def file_complete(self, file_size):
        if not self._receiving or self.upload is None:
            return None
        self._receiving = False
        self.upload.seek(0)
        self.upload.size = self._size
        self.upload.sha256 = self._sha256.hexdigest()
        return self.upload

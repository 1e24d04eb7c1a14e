"""Errors as types: one class per S3 error code, each carrying its HTTP status.

Layers translate errors by type, never by message text. Storage-internal
failures (a corrupt pool, an unknown object ID on an object server) have their
own classes outside the S3 catalogue so they cannot leak as a wrong S3 code.
"""

from __future__ import annotations

from typing import ClassVar


class OstorError(Exception):
    """Base of every error ostor raises on purpose."""


class S3Error(OstorError):
    """An error with an S3 code and HTTP status; subclasses are named after the code."""

    code: ClassVar[str] = "InternalError"
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "We encountered an internal error. Please try again."

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None,
                 **fields: str) -> None:
        self.message = message or self.default_message
        #: Extra XML elements S3 adds for this error (BucketName, Key, ...).
        self.fields = fields
        #: Response headers S3 sends with this error (e.g. x-amz-delete-marker on a 404).
        self.headers = headers or {}
        super().__init__(self.message)


_CATALOGUE: dict[str, type[S3Error]] = {}


def _error(code: str, status: int, message: str) -> type[S3Error]:
    cls = type(code, (S3Error,), {"code": code, "status": status, "default_message": message,
                                  "__doc__": f"S3 error {code} (HTTP {status}): {message}"})
    cls.__module__ = __name__
    _CATALOGUE[code] = cls
    return cls


def error_class(code: str) -> type[S3Error]:
    """Return the class for an S3 error code (KeyError if it is not in the catalogue)."""
    return _CATALOGUE[code]


AccessDenied = _error("AccessDenied", 403, "Access Denied")
AuthorizationHeaderMalformed = _error("AuthorizationHeaderMalformed", 400, "The authorization header is malformed.")
BadDigest = _error("BadDigest", 400, "The Content-MD5 or checksum value that you specified did not match what the server received.")
BucketAlreadyExists = _error("BucketAlreadyExists", 409, "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.")
BucketAlreadyOwnedByYou = _error("BucketAlreadyOwnedByYou", 409, "Your previous request to create the named bucket succeeded and you already own it.")
BucketNotEmpty = _error("BucketNotEmpty", 409, "The bucket you tried to delete is not empty.")
EntityTooLarge = _error("EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed object size.")
EntityTooSmall = _error("EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size.")
IncompleteBody = _error("IncompleteBody", 400, "You did not provide the number of bytes specified by the Content-Length HTTP header.")
InternalError = _error("InternalError", 500, "We encountered an internal error. Please try again.")
InvalidAccessKeyId = _error("InvalidAccessKeyId", 403, "The AWS access key Id you provided does not exist in our records.")
InvalidArgument = _error("InvalidArgument", 400, "Invalid Argument")
InvalidBucketName = _error("InvalidBucketName", 400, "The specified bucket is not valid.")
InvalidBucketState = _error("InvalidBucketState", 409, "The request is not valid with the current state of the bucket.")
InvalidDigest = _error("InvalidDigest", 400, "The Content-MD5 you specified is not valid.")
InvalidPart = _error("InvalidPart", 400, "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")
InvalidPartOrder = _error("InvalidPartOrder", 400, "The list of parts was not in ascending order. Parts must be ordered by part number.")
InvalidRange = _error("InvalidRange", 416, "The requested range is not satisfiable")
InvalidRequest = _error("InvalidRequest", 400, "Invalid Request")
KeyTooLongError = _error("KeyTooLongError", 400, "Your key is too long")
MalformedXML = _error("MalformedXML", 400, "The XML you provided was not well-formed or did not validate against our published schema.")
MetadataTooLarge = _error("MetadataTooLarge", 400, "Your metadata headers exceed the maximum allowed metadata size.")
MethodNotAllowed = _error("MethodNotAllowed", 405, "The specified method is not allowed against this resource.")
MissingContentLength = _error("MissingContentLength", 411, "You must provide the Content-Length HTTP header.")
NoSuchBucket = _error("NoSuchBucket", 404, "The specified bucket does not exist")
NoSuchKey = _error("NoSuchKey", 404, "The specified key does not exist.")
NoSuchUpload = _error("NoSuchUpload", 404, "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
NoSuchVersion = _error("NoSuchVersion", 404, "The specified version does not exist.")
NotImplemented_ = _error("NotImplemented", 501, "A header you provided implies functionality that is not implemented.")
OperationAborted = _error("OperationAborted", 409, "A conflicting conditional operation is currently in progress against this resource. Try again.")
PreconditionFailed = _error("PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold")
RequestTimeout = _error("RequestTimeout", 400, "Your socket connection to the server was not read from or written to within the timeout period.")
ServiceUnavailable = _error("ServiceUnavailable", 503, "Please reduce your request rate.")
SignatureDoesNotMatch = _error("SignatureDoesNotMatch", 403, "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
RequestTimeTooSkewed = _error("RequestTimeTooSkewed", 403, "The difference between the request time and the server's time is too large.")
XAmzContentSHA256Mismatch = _error("XAmzContentSHA256Mismatch", 400, "The provided 'x-amz-content-sha256' header does not match what was computed.")
AuthorizationQueryParametersError = _error("AuthorizationQueryParametersError", 400, "Error parsing the X-Amz-Credential parameter.")
MissingSecurityHeader = _error("MissingSecurityHeader", 400, "Your request is missing a required header.")
InvalidLocationConstraint = _error("InvalidLocationConstraint", 400, "The specified location-constraint is not valid.")
ConditionalRequestConflict = _error("ConditionalRequestConflict", 409, "The conditional request cannot succeed due to a conflicting operation against this resource.")


class StorageError(OstorError):
    """A failure inside a storage service (not an S3 protocol error)."""


class CorruptStoreError(StorageError):
    """A pool file or database is damaged or of an unknown format; the service refuses to start."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ObjectNotFoundError(StorageError):
    """An object server holds no object with this ID."""

    def __init__(self, object_id: bytes) -> None:
        self.object_id = object_id
        super().__init__(f"no object {object_id.hex()}")


class TruncatedStreamError(StorageError):
    """A data stream ended without its end-of-data frame."""


class GuardMissingError(StorageError):
    """A create arrived after its guard expired or was never taken."""

    def __init__(self, object_id: bytes) -> None:
        self.object_id = object_id
        super().__init__(f"no guard for object {object_id.hex()} (expired or never taken)")


class ServiceStoppedError(StorageError):
    """A request reached a service that is stopping or stopped."""


# --- Admin errors (ostor-s3-admin; users, keys, buckets). Not S3 protocol errors: the admin
# --- socket sends them by class name and the tool maps them to messages and exit codes.

class AdminError(OstorError):
    """An admin request refused for a reason the administrator can fix."""


class NoSuchUser(AdminError):
    """No user has the given ID or e-mail."""


class UserAlreadyExists(AdminError):
    """A user with this e-mail already exists."""


class AccessKeyLimitExceeded(AdminError):
    """The user already has the maximum number of active access key pairs."""


class NoSuchAccessKey(AdminError):
    """The user has no access key with this ID."""


class UserOwnsBuckets(AdminError):
    """A user cannot be deleted while it owns buckets."""


class InvalidAdminArgument(AdminError):
    """A malformed argument (e-mail, user ID, access key ID) or a refused target."""


class VolumeMismatch(AdminError):
    """The -V volume ID does not match the volume in the data directory."""


def admin_error_class(name: str) -> type[AdminError]:
    """The AdminError subclass called ``name`` (KeyError for anything else)."""
    cls = globals().get(name)
    if isinstance(cls, type) and issubclass(cls, AdminError):
        return cls
    raise KeyError(name)


def message_error_types() -> tuple[type[OstorError], ...]:
    """Every error type that may cross a service boundary, in a stable order (for the codec)."""
    s3 = tuple(_CATALOGUE[code] for code in sorted(_CATALOGUE))
    return s3 + (OstorError, S3Error, StorageError, CorruptStoreError, ObjectNotFoundError,
                 TruncatedStreamError, GuardMissingError, ServiceStoppedError)


class ServiceUnavailableError(StorageError):
    """A service in another process could not be reached, or its connection broke mid-call."""


# --- Guest API (ostor.guestapi): instances, devices and images administered through ostor-ctl,
# --- and the refusals the guest socket answers with. The admin ones travel by class name.

class NoSuchInstance(AdminError):
    """No instance has this name."""


class InstanceAlreadyExists(AdminError):
    """An instance with this name already exists."""


class NoSuchDevice(AdminError):
    """The instance has no device with this name."""


class DeviceAlreadyExists(AdminError):
    """The instance already has a device with this name."""


class NoSuchConfigKey(AdminError):
    """The instance has no such configuration key to unset."""


class NoSuchImage(AdminError):
    """No image has this fingerprint or alias."""


class GuestApiError(OstorError):
    """A refusal on the guest socket: HTTP status plus a plain-text message."""

    status: ClassVar[int] = 500


class GuestBadRequest(GuestApiError):
    """The request cannot be understood (bad JSON, invalid state)."""

    status = 400


class GuestForbidden(GuestApiError):
    """The caller matches no instance, has the guest API disabled, or asked outside its namespaces."""

    status = 403


class GuestNotFound(GuestApiError):
    """No such configuration key, image or route."""

    status = 404


class GuestMethodNotAllowed(GuestApiError):
    """The route exists but not for this method."""

    status = 405


# --- Multipart and versioning (gateway handlers).
InvalidPartNumber = _error("InvalidPartNumber", 416, "The requested partnumber is not satisfiable")
IllegalVersioningConfigurationException = _error("IllegalVersioningConfigurationException", 400, "The Versioning element must be specified")

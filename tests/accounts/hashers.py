from django.contrib.auth.hashers import MD5PasswordHasher

calls: list[str] = []


class CountingHasher(MD5PasswordHasher):
    """Records each hash computed, so a test can tell whether a login did the hashing work."""

    algorithm = "counting_md5"

    def encode(self, password, salt):
        calls.append("encode")
        return super().encode(password, salt)

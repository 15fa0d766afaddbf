import os

from django.core.wsgi import get_wsgi_application

from instagram.bodies import body_guard
from instagram.charsets import charset_guard

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "instagram.settings")
application = body_guard(charset_guard(get_wsgi_application()))

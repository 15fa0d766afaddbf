import os

from django.core.wsgi import get_wsgi_application

from instagram.charsets import charset_guard

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "instagram.settings")
application = charset_guard(get_wsgi_application())

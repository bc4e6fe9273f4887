from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0002_breakerauditentry_outcome"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="breakerauditentry",
            options={
                "ordering": ["-created_at", "-id"],
                "permissions": [
                    ("operate_breakers", "Can reset or force circuit breakers"),
                    ("explain_requests", "Can run explain requests through the engine from the console"),
                ],
                "verbose_name": "breaker audit entry",
                "verbose_name_plural": "breaker audit entries",
            },
        ),
    ]

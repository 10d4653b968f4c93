"""``make bench``: sluice next to the naive pika baseline, a tuned raw pika loop, FastStream and Celery.

Every contender runs in its own process against the same RabbitMQ 4.x in the same run, with
persistent messages, publisher confirms and manual acks. One module per contender
(:mod:`bench.naive`, :mod:`bench.tuned`, :mod:`bench.sluice`, :mod:`bench.faststream_consumer`,
:mod:`bench.celery_consumer`), the scenarios in :mod:`bench.runner`, the table and plot in
:mod:`bench.report`. ``python -m bench --help`` lists the options.
"""

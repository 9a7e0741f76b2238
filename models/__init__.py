"""nianbao's data layer: the national forms as data, cells, results and database tables.

Nothing in this package does I/O or imports another nianbao package.
"""

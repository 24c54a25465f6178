"""Batch scoring: a file of listings of any size through a registered model, chunk by chunk, into Parquet.

Memory stays that of one chunk whatever the file's size: Parquet is read a row batch at a time and
CSV a chunk at a time, and each chunk's answers are appended to the output as a Parquet row group.
The output is written beside its final name and moved there when complete, so a killed run never
leaves a truncated file that looks finished.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from rich.progress import Progress

from pigeonhole.model.data import CSV_OPTIONS, FEATURE_COLUMNS, DataValidationError, csv_separator
from pigeonhole.model.predict import Predictor


def count_rows(path: Path) -> int | None:
    """Known up front for Parquet (its footer says), not for CSV."""
    return pq.ParquetFile(path).metadata.num_rows if csv_separator(path) is None else None


def read_chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    separator = csv_separator(path)
    if separator is None:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
            yield batch.to_pandas()
    else:
        yield from pd.read_csv(path, sep=separator, chunksize=rows, **CSV_OPTIONS)


def score_file(
    predictor: Predictor, source: Path, out: Path, k: int, chunk_rows: int, progress: Progress
) -> int:
    """Write ``listing_id`` (when the file has one), the suggestion and its top ``k`` per row; return rows."""
    task = progress.add_task(f"Scoring {source.name}", total=count_rows(source))
    partial = out.with_name(f".{out.name}.partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    scored = 0
    writer: pq.ParquetWriter | None = None
    try:
        for chunk in read_chunks(source, chunk_rows):
            if "title" not in chunk:
                raise DataValidationError(f"{source}: needs a title column; found {', '.join(chunk.columns)}")
            answers = predictor.suggest(chunk.fillna({"title": ""}), k=k)
            if "listing_id" in chunk:
                answers.insert(0, "listing_id", chunk["listing_id"].astype(str).to_numpy())
            table = pa.Table.from_pandas(answers, preserve_index=False)
            writer = writer or pq.ParquetWriter(partial, table.schema)
            writer.write_table(table)
            scored += len(chunk)
            progress.update(task, advance=len(chunk))
        if writer is None:
            raise DataValidationError(f"{source}: no rows to score")
        writer.close()
        os.replace(partial, out)
    finally:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
    return scored


def score_on_spark(model_uri: str, source: str, out: str, k: int) -> int:
    """The same registered model over a file on Spark: MLflow's ``spark_udf`` ships the pyfunc model
    to every executor once, and each scores its partitions in Arrow batches; the executors never
    talk to the registry. ``source`` and ``out`` are anything Spark reads and writes (a local folder,
    s3a://, hdfs://); ``out`` is a Parquet folder of part files, Spark's convention. The session is
    whatever ``spark-submit`` configured, or local mode on every core when run directly.
    """
    import mlflow.pyfunc
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as sql

    # executors run this interpreter (where pigeonhole is installed) unless the cluster says otherwise
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = SparkSession.builder.appName("pigeonhole score").getOrCreate()
    reader = spark.read.option("header", True).option("multiLine", True).option("escape", '"')
    frame = reader.parquet(source) if source.endswith((".parquet", ".pq", "/")) else reader.csv(source)
    if "title" not in frame.columns:
        raise DataValidationError(f"{source}: needs a title column; found {', '.join(frame.columns)}")
    types = {"title": "string", "description": "string", "price": "double"}
    inputs = [sql.col(c).cast(types[c]).alias(c) for c in FEATURE_COLUMNS if c in frame.columns]
    cores = spark.sparkContext.defaultParallelism
    if frame.rdd.getNumPartitions() < cores:  # one file is one partition: spread it over every core
        frame = frame.repartition(cores)
    suggest = mlflow.pyfunc.spark_udf(spark, model_uri, env_manager="local", params={"k": k})
    kept = ["listing_id"] if "listing_id" in frame.columns else []
    answers = frame.select(*kept, suggest(sql.struct(*inputs)).alias("answer")).select(*kept, "answer.*")
    answers.write.mode("overwrite").parquet(out)
    return spark.read.parquet(out).count()

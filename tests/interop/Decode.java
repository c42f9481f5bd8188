// Decodes Puente's single-object-encoded records with Apache Avro's Java library.
// Usage: java -cp "<avro libs>/*" Decode.java SCHEMA_FILE... < input
// Input lines: "<hex of single-object bytes>". Output per line: the record in Avro's JSON
// encoding, a tab, then the hex of Java's own single-object encoding of the same record.
// BinaryMessageDecoder resolves the writer schema by its CRC-64-AVRO fingerprint through the
// SchemaStore, so this also proves Puente's framing and fingerprints match Java's.
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.util.HexFormat;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.io.JsonEncoder;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.avro.message.SchemaStore;

public class Decode {
  public static void main(String[] args) throws Exception {
    SchemaStore.Cache store = new SchemaStore.Cache();
    for (String path : args) {
      store.addSchema(new Schema.Parser().parse(new File(path)));
    }
    HexFormat hex = HexFormat.of();
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
    String line;
    while ((line = in.readLine()) != null) {
      if (line.isBlank()) continue;
      byte[] data = hex.parseHex(line.trim());
      long fp = ByteBuffer.wrap(data, 2, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
      Schema schema = store.findByFingerprint(fp);
      if (schema == null) throw new IllegalStateException("unknown fingerprint " + fp);
      BinaryMessageDecoder<GenericRecord> decoder =
          new BinaryMessageDecoder<>(GenericData.get(), schema, store);
      GenericRecord record = decoder.decode(data);
      ByteArrayOutputStream json = new ByteArrayOutputStream();
      JsonEncoder enc = EncoderFactory.get().jsonEncoder(schema, json);
      new GenericDatumWriter<GenericRecord>(schema).write(record, enc);
      enc.flush();
      byte[] again = new BinaryMessageEncoder<GenericRecord>(GenericData.get(), schema)
          .encode(record).array();
      System.out.println(json.toString("UTF-8") + "\t" + hex.formatHex(again));
    }
  }
}

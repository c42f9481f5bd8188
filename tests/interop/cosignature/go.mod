module puente.interop/cosignature

go 1.26
